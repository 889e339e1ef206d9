"""DuckDB opens and cold wall time of a one-file ``codeindex update``, for several code trees side by side.

    python -m benchmarks.db_opens --indexed TREE --code OLD_CHECKOUT --code NEW_CHECKOUT [--repeat 9]

``TREE`` is an indexed source tree (its ``.codeindex``); each ``--code`` is a checkout of codeindex put
first on ``PYTHONPATH`` for its runs, so two versions are measured in one run on one index (they must
share the storage format). Each repeat appends one line to the same mid-sized file, then runs every
version once, in turn, as a fresh process (cold: imports, plugin loading, model identity), counting
``duckdb.connect`` calls inside it. Prints one JSON object: per version the median/min/max wall seconds
and the opens per update.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import pick_edit_file

_RUNNER = """
import sys, time, duckdb
opens = [0]
real = duckdb.connect
def counting(*a, **k):
    opens[0] += 1
    return real(*a, **k)
duckdb.connect = counting
started = time.perf_counter()
from codeindex.cli import main
rc = main(["-q", "update", sys.argv[1], "--scheduler", "sync"])
import codeindex
print("RESULT", rc, opens[0], time.perf_counter() - started, codeindex.__file__)
"""


def _one(code: Path, tree: Path) -> tuple[int, float]:
    env = {**os.environ, "PYTHONPATH": str(code), "HF_HUB_OFFLINE": "1", "ORT_DISABLE_TELEMETRY": "1"}
    started = time.perf_counter()
    # cwd outside every checkout: `python -c` puts the cwd first on sys.path, ahead of PYTHONPATH
    proc = subprocess.run([sys.executable, "-c", _RUNNER, str(tree)], env=env, capture_output=True, text=True,
                          check=False, cwd=tree.parent)
    wall = time.perf_counter() - started
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT")), None)
    if line is None or line.split()[1] != "0":
        raise SystemExit(f"update with {code} failed: {proc.stdout[-500:]} {proc.stderr[-2000:]}")
    if not Path(line.split()[4]).resolve().is_relative_to(code.resolve()):
        raise SystemExit(f"the run meant for {code} imported {line.split()[4]}")
    return int(line.split()[2]), wall


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--indexed", type=Path, required=True)
    ap.add_argument("--code", type=Path, action="append", required=True)
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args(argv)
    target = pick_edit_file(args.indexed)
    walls: dict[str, list[float]] = {str(c): [] for c in args.code}
    opens: dict[str, set[int]] = {str(c): set() for c in args.code}
    for i in range(args.repeat):
        for code in args.code:
            with target.open("a") as fh:
                fh.write(f"\n# edit {i} {code.name} {time.time_ns()}\n")
            n, wall = _one(code, args.indexed)
            walls[str(code)].append(wall)
            opens[str(code)].add(n)
    out: dict[str, Any] = {"tree": str(args.indexed), "edited": str(target.relative_to(args.indexed)),
                           "repeat": args.repeat, "versions": {}}
    for code in args.code:
        w = walls[str(code)]
        out["versions"][str(code)] = {"db_opens_per_update": sorted(opens[str(code)]),
                                      "cold_update_s_median": round(statistics.median(w), 3),
                                      "min": round(min(w), 3), "max": round(max(w), 3)}
    if len(args.code) == 2:
        a, b = (out["versions"][str(c)]["cold_update_s_median"] for c in args.code)
        out["median_ratio_second_over_first"] = round(b / a, 3)
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
