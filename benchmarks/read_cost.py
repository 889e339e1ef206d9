"""What trusting the read costs: walk, no-op update and one-file edit, before and after, side by side.

Issue 15 made every source read a checked one (``O_NOFOLLOW | O_NONBLOCK``, ``fstat``, size cap), the
pipeline's read re-hashed, the ignore matcher linear-time, and discovery skip credential files and
escape non-UTF-8 names. This times what a user feels, as cold ``codeindex`` processes, for two
checkouts of codeindex (``PYTHONPATH``) each over its own indexed copy of the same corpus (the schema
changed, so one index cannot serve both), interleaved (before, after, before, after...) so that the
load of a shared machine falls on both alike:

* ``walk``: ``discover()`` of the whole tree in a fresh process (the ignore matcher and the per-file
  discovery checks), import time excluded;
* ``noop``: ``codeindex update`` with nothing changed;
* ``edit``: append a line to one file, ``codeindex update`` (the one-file edit: scan, checked read,
  re-hash, parse, embed, commit); the file is put back and the index updated, untimed.

    flock /work/bench.lock python -m benchmarks.read_cost \\
        --before /work/base:/tmp/i15/bench/base-large --after .:/tmp/i15/bench/new-large --repeat 7
    python -m benchmarks.read_cost --before /work/base --after . --walk-only COPY --add-gitignore

Prints one JSON object: per side and measure the median and spread in seconds, and after/before ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_WALK = r"""
import sys, time
from pathlib import Path
try:
    from codeindex.changes.discovery import discover
except ImportError:  # a codeindex from before the stage layout
    from codeindex.discovery import discover
from codeindex.languages import LanguageMap
from codeindex.plugins import get_plugin_manager
language_of = LanguageMap.from_parsers(get_plugin_manager().parsers()).language_of
start = time.perf_counter()
found = discover(Path(sys.argv[1]), language_of, max_file_bytes=1 << 20)
print(time.perf_counter() - start, len(found.files))
"""


def _env(pythonpath: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(pythonpath).resolve()), "HF_HUB_OFFLINE": "1",
            "ORT_DISABLE_TELEMETRY": "1"}


def _cli(pythonpath: str, *args: str, attempts: int = 1) -> float:
    """Seconds one ``codeindex`` command took; its stderr is shown if it fails (``attempts`` times)."""
    for attempt in range(attempts):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "codeindex.cli", *args], env=_env(pythonpath),
                              capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return time.perf_counter() - start
        print(f"codeindex {' '.join(args)} (PYTHONPATH={pythonpath}) exited {proc.returncode}: "
              f"{proc.stderr.strip()[-500:]}", file=sys.stderr)
        if attempt + 1 < attempts:
            time.sleep(5)
    raise SystemExit(f"codeindex {' '.join(args)} failed")


def _walk(pythonpath: str, root: Path) -> tuple[float, int]:
    out = subprocess.run([sys.executable, "-c", _WALK, str(root)], env=_env(pythonpath), check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), int(out[1])


def _edit_file(root: Path) -> Path:
    """The same file in every copy: the first Python file of a mid-sized package, by sorted path."""
    files = sorted(p for p in root.rglob("*.py") if ".codeindex" not in p.parts and 2_000 < p.stat().st_size < 20_000)
    if not files:
        raise SystemExit(f"no Python file to edit under {root}")
    return files[len(files) // 2]


def measure(sides: dict[str, tuple[str, Path]], repeat: int) -> dict[str, Any]:
    times: dict[str, dict[str, list[float]]] = {s: {"walk": [], "noop": [], "edit": []} for s in sides}
    files_seen: dict[str, int] = {}
    edit = {s: _edit_file(root) for s, (_, root) in sides.items()}
    rels = {p.relative_to(sides[s][1]).as_posix() for s, p in edit.items()}
    if len(rels) != 1:
        raise SystemExit(f"the copies differ: edit files {rels}")
    for pythonpath, root in sides.values():  # settle each index once (untimed): a no-op from here on
        _cli(pythonpath, "update", str(root), attempts=3)
    for i in range(repeat):
        for side, (pythonpath, root) in sides.items():
            seconds, n = _walk(pythonpath, root)
            times[side]["walk"].append(seconds)
            files_seen[side] = n
            times[side]["noop"].append(_cli(pythonpath, "update", str(root)))
            path = edit[side]
            original = path.read_bytes()
            path.write_bytes(original + f"\n# benchmark edit {i}\n".encode())
            try:
                times[side]["edit"].append(_cli(pythonpath, "update", str(root)))
            finally:
                path.write_bytes(original)
                _cli(pythonpath, "update", str(root), attempts=3)
    out: dict[str, Any] = {"repeat": repeat, "edit_file": rels.pop(), "files_found_by_walk": files_seen}
    for side in sides:
        out[side] = {m: {"median_s": round(statistics.median(v), 4), "min_s": round(min(v), 4),
                         "max_s": round(max(v), 4)} for m, v in times[side].items()}
    if {"before", "after"} <= set(sides):
        out["after_over_before"] = {m: round(out["after"][m]["median_s"] / out["before"][m]["median_s"], 3)
                                    for m in ("walk", "noop", "edit")}
    return out


# A .gitignore of the kind real repositories carry (the GitHub templates' common lines for Python, Node,
# Java, Go, Rust and C/C++), for timing the matcher: the corpora themselves hold no ignore files.
TYPICAL_GITIGNORE = """
__pycache__/
*.py[cod]
*$py.class
*.so
.Python
build/
develop-eggs/
dist/
downloads/
eggs/
.eggs/
lib64/
parts/
sdist/
var/
wheels/
*.egg-info/
.installed.cfg
*.egg
MANIFEST
*.manifest
*.spec
pip-log.txt
pip-delete-this-directory.txt
htmlcov/
.tox/
.nox/
.coverage
.coverage.*
.cache
nosetests.xml
coverage.xml
*.cover
*.py,cover
.hypothesis/
.pytest_cache/
*.mo
*.pot
local_settings.py
db.sqlite3
instance/
.webassets-cache
.scrapy
docs/_build/
target/
.ipynb_checkpoints
profile_default/
ipython_config.py
.python-version
celerybeat-schedule
*.sage.py
.venv
env/
venv/
ENV/
.spyderproject
.ropeproject
/site
.mypy_cache/
.dmypy.json
.pyre/
logs
*.log
npm-debug.log*
yarn-debug.log*
yarn-error.log*
lerna-debug.log*
report.[0-9]*.[0-9]*.[0-9]*.[0-9]*.json
pids
*.pid
*.seed
*.pid.lock
lib-cov
coverage
*.lcov
.nyc_output
.grunt
bower_components
.lock-wscript
build/Release
node_modules/
jspm_packages/
web_modules/
*.tsbuildinfo
.npm
.eslintcache
.stylelintcache
.rpt2_cache/
.rts2_cache_cjs/
*.tgz
.yarn-integrity
.next
out
.nuxt
.vuepress/dist
.serverless/
.fusebox/
.dynamodb/
.tern-port
.vscode-test
.yarn/cache
.yarn/unplugged
.pnp.*
*.class
*.jar
*.war
*.nar
*.ear
hs_err_pid*
replay_pid*
*.exe
*.exe~
*.dll
*.dylib
*.test
*.out
go.work
debug/
**/*.rs.bk
*.pdb
*.d
*.slo
*.lo
*.o
*.obj
*.gch
*.pch
*.lai
*.la
*.a
*.lib
*.app
**/cmake-build-*/
CMakeFiles/
CMakeCache.txt
!important.log
"""


def measure_walk(sides: dict[str, str], root: Path, repeat: int) -> dict[str, Any]:
    """The walk alone over ``root`` (which may carry ignore files), interleaved per side."""
    times: dict[str, list[float]] = {s: [] for s in sides}
    found: dict[str, int] = {}
    for _ in range(repeat):
        for side, pythonpath in sides.items():
            seconds, found[side] = _walk(pythonpath, root)
            times[side].append(seconds)
    out: dict[str, Any] = {"repeat": repeat, "root": str(root), "files_found": found}
    for side, values in times.items():
        out[side] = {"median_s": round(statistics.median(values), 4), "min_s": round(min(values), 4),
                     "max_s": round(max(values), 4)}
    if {"before", "after"} <= set(sides):
        out["after_over_before"] = round(out["after"]["median_s"] / out["before"]["median_s"], 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="PYTHONPATH:indexed root (PYTHONPATH alone with --walk-only)")
    parser.add_argument("--after", required=True, help="PYTHONPATH:indexed root (PYTHONPATH alone with --walk-only)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--walk-only", type=Path, default=None,
                        help="only time the walk of this tree (put TYPICAL_GITIGNORE in it with --add-gitignore)")
    parser.add_argument("--add-gitignore", action="store_true",
                        help="with --walk-only: write TYPICAL_GITIGNORE at the tree's root and in each top folder")
    args = parser.parse_args(argv)
    if args.walk_only is not None:
        if args.add_gitignore:
            for folder in [args.walk_only, *(p for p in args.walk_only.iterdir() if p.is_dir())]:
                (folder / ".gitignore").write_text(TYPICAL_GITIGNORE)
        sides_walk = {name: getattr(args, name).partition(":")[0] for name in ("before", "after")}
        print(json.dumps(measure_walk(sides_walk, args.walk_only.resolve(), args.repeat), indent=2))
        return 0
    sides = {}
    for name in ("before", "after"):
        pythonpath, _, root = getattr(args, name).partition(":")
        sides[name] = (pythonpath, Path(root).resolve())
    print(json.dumps(measure(sides, args.repeat), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
