"""The index-vs-disk oracle, and a campaign of random mutations during runs that it must survive.

``check_index(root)`` compares a committed index with the tree on disk, from first principles: every
file discovery indexes has a ``files`` row whose hash is the blake3 of its bytes now, no row names a
file that is gone, every chunk's text is in its file (after the same secret masking the pipeline
applies), and each row's chunk count is the number of its chunks. Run it after a quiet ``update``.

The campaign (``python tests/index_oracle.py --files 300 --runs 20``) builds a tree, then runs
``update`` after ``update`` while the tree changes under it: at the point between the scan and the
pipeline's reads (a checkout, truncations, files swapped for symlinks out of the root or for FIFOs,
files grown past the size cap), and at random moments from a second thread. After each run one quiet
``update`` must bring the index to agree with the disk, and the next ``update`` must find nothing
to do. Exit status 0 when every run passes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import blake3
import duckdb

if __name__ == "__main__":  # run as a script from a checkout: import this checkout's codeindex
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codeindex import Index, crashpoints
from codeindex.changes.discovery import discover
from codeindex.config import load_config
from codeindex.languages import LanguageMap
from codeindex.plugins import get_plugin_manager
from codeindex.store.layout import IndexLayout

try:
    from codeindex.secrets import redact
except ImportError:  # a codeindex from before the secret scanner: nothing is masked
    def redact(data: bytes) -> tuple[bytes, list[object]]:
        return data, []

CAP = 64 * 1024
"""The size cap the campaign runs with (small, so that growing a file past it is cheap)."""


def check_index(root: Path, index_dir: Path | None = None, *, max_file_bytes: int | None = None) -> list[str]:
    """Every disagreement between the committed index of ``root`` and the disk (empty: they agree)."""
    index_dir = index_dir or root / ".codeindex"
    cap = max_file_bytes or load_config(root)["discovery.max_file_bytes"]
    lang_map = LanguageMap.from_parsers(get_plugin_manager().parsers())
    on_disk = {f.path: f for f in discover(root, lang_map.language_of, max_file_bytes=cap,
                                           exclude=IndexLayout(root, index_dir).excluded_names()).files}
    con = duckdb.connect(str(index_dir / "meta.duckdb"), read_only=True)
    try:
        rows = {p: (h, n, skip) for p, h, n, skip in
                con.execute("SELECT path, hash, n_chunks, skip_reason FROM files").fetchall()}
        chunks: dict[str, list[str]] = {}
        for path, text in con.execute("SELECT path, text FROM chunks").fetchall():
            chunks.setdefault(path, []).append(text)
    finally:
        con.close()
    problems: list[str] = []
    for path in sorted(set(on_disk) - set(rows)):
        problems.append(f"{path}: on disk, not in the index")
    for path in sorted(set(rows) - set(on_disk)):
        problems.append(f"{path}: in the index, not on disk")
    for path in sorted(set(chunks) - set(rows)):
        problems.append(f"{path}: chunks without a files row")
    for path in sorted(set(rows) & set(on_disk)):
        stored_hash, n_chunks, skip = rows[path]
        try:
            data = (root / getattr(on_disk[path], "open_path", path)).read_bytes()
        except OSError as exc:
            problems.append(f"{path}: unreadable now ({exc})")
            continue
        if stored_hash != blake3.blake3(data).hexdigest():
            problems.append(f"{path}: stored hash is not the file's blake3")
        texts = chunks.get(path, [])
        if n_chunks != len(texts):
            problems.append(f"{path}: n_chunks {n_chunks}, {len(texts)} chunks stored")
        if skip is None and data.strip() and not texts:
            problems.append(f"{path}: indexed with no chunks")
        content = redact(data)[0].decode("utf-8", errors="replace")
        for text in texts:
            if text not in content:
                problems.append(f"{path}: chunk text not in the file: {text[:60]!r}")
                break
    return problems


# ---------------------------------------------------------------------------------------------- the campaign


def _source(rng: random.Random, i: int, variant: str) -> str:
    funcs = []
    for k in range(rng.randint(1, 12)):
        body = "\n".join(f"    v{j} = {variant!r} + str({i * 100 + k * 10 + j})" for j in range(rng.randint(1, 15)))
        funcs.append(f"def f_{variant}_{i}_{k}(x):\n    \"\"\"Function {k} of file {i}, {variant}.\"\"\"\n{body}\n"
                     f"    return x\n")
    return "\n\n".join(funcs)


def make_tree(root: Path, n_files: int, rng: random.Random) -> None:
    for i in range(n_files):
        path = root / f"pkg{i % 7}" / f"sub{i % 3}" / f"mod_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_source(rng, i, "main"))


@dataclass
class Mutator:
    """Changes the tree the way users, tools and attackers do; every change keeps the tree indexable."""

    root: Path
    outside: Path
    rng: random.Random

    def files(self) -> list[Path]:
        return plain_files(self.root)  # never a FIFO: opening one to change it would block this thread

    def one(self) -> None:
        files = self.files()
        if not files:
            return
        path = self.rng.choice(files)
        action = self.rng.choice(["edit", "edit", "truncate", "append", "delete", "create", "rename",
                                  "symlink-out", "fifo", "grow", "restore"])
        with contextlib.suppress(OSError):
            if action == "edit":
                _replace(path, _source(self.rng, self.rng.randint(0, 999), f"e{self.rng.randint(0, 99)}"))
            elif action == "truncate":
                data = path.read_bytes()
                with open(path, "r+b") as fh:
                    fh.truncate(self.rng.randint(0, len(data)))
            elif action == "append":
                with open(path, "a") as fh:
                    fh.write(f"\n\ndef appended_{self.rng.randint(0, 9999)}():\n    return 1\n")
            elif action == "delete":
                path.unlink()
            elif action == "create":
                new = path.with_name(f"new_{self.rng.randint(0, 99999)}.py")
                new.write_text(_source(self.rng, self.rng.randint(0, 999), "new"))
            elif action == "rename":
                path.rename(path.with_name(f"moved_{self.rng.randint(0, 99999)}.py"))
            elif action == "symlink-out":
                target = self.outside / f"outside_{self.rng.randint(0, 99)}.py"
                target.write_text("OUTSIDE_THE_ROOT = 'must never be indexed'\n")
                path.unlink()
                path.symlink_to(target)
            elif action == "fifo":
                path.unlink()
                os.mkfifo(path)
            elif action == "grow":
                with open(path, "a") as fh:
                    fh.write("# grown\n" * (CAP // 4))
            elif action == "restore":
                _replace(path, _source(self.rng, self.rng.randint(0, 999), "main"))

    def settle(self) -> None:
        """Turn what no indexer can index (FIFOs, links out, oversize files) back into plain files now and
        then, so the tree does not fill up with them."""
        for path in list(self.root.rglob("*.py")):
            if ".codeindex" in path.parts:
                continue
            if (path.is_symlink() or path.is_fifo()) and self.rng.random() < 0.5:
                path.unlink()
                path.write_text(_source(self.rng, self.rng.randint(0, 999), "main"))


def _replace(path: Path, text: str) -> None:
    """An editor's save: write a new file and rename it over the old one (a new inode)."""
    tmp = path.with_name(path.name + ".swp")
    tmp.write_text(text)
    os.replace(tmp, path)


def plain_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py")
                  if p.is_file() and not p.is_symlink() and ".codeindex" not in p.parts)


def checkout(root: Path, rng: random.Random, variant: str) -> dict[Path, bytes]:
    """Rewrite every Python file in place, as ``git checkout`` of another branch does; returns what
    was there, for ``restore`` (the checkout back)."""
    before = {path: path.read_bytes() for path in plain_files(root)}
    for i, path in enumerate(before):
        path.write_text(_source(rng, i, variant))
    return before


def truncate_all(root: Path, rng: random.Random) -> dict[Path, bytes]:
    """Cut every Python file short (a writer caught mid-write); returns what was there, for ``restore``."""
    before = {path: path.read_bytes() for path in plain_files(root)}
    for path, data in before.items():
        with open(path, "r+b") as fh:
            fh.truncate(rng.randint(0, len(data)))
    return before


def restore(contents: dict[Path, bytes]) -> None:
    """Put exactly the saved bytes back, in place."""
    for path, data in contents.items():
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink():
                path.write_bytes(data)


@contextlib.contextmanager
def at_point(name: str, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` once when a run reaches the crash point ``name`` (in this process)."""
    original = crashpoints.hit
    fired = False

    def hit(point: str) -> None:
        nonlocal fired
        if point == name and not fired:
            fired = True
            action()
        original(point)

    crashpoints.hit = hit
    try:
        yield
    finally:
        crashpoints.hit = original


@contextlib.contextmanager
def mutating(mutator: Mutator, *, period_s: float) -> Iterator[None]:
    """Mutate the tree from a second thread, at random moments, while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(mutator.rng.uniform(0, period_s)):
            mutator.one()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def campaign(workdir: Path, *, n_files: int, runs: int, seed: int, log: Callable[[str], None] = print) -> int:
    """Run the campaign; returns the number of runs after which the oracle disagreed."""
    rng = random.Random(seed)
    root, outside = workdir / "tree", workdir / "outside"
    root.mkdir(parents=True)
    outside.mkdir(parents=True)
    make_tree(root, n_files, rng)
    index = Index(root, config=load_config(root, {"discovery.max_file_bytes": CAP}))
    index.rebuild(scheduler="sync", embedder="hashing")
    mutator = Mutator(root, outside, rng)
    failures = 0
    kinds = ["checkout-rebuild", "checkout-update", "truncate", "burst", "background"]
    for run in range(runs):
        started = time.perf_counter()
        kind = kinds[run % len(kinds)] if run < len(kinds) else rng.choice(kinds)
        saved: dict[Path, bytes] = {}

        def race(kind: str = kind, run: int = run, saved: dict[Path, bytes] = saved) -> None:
            """What happens between the scan and the pipeline's reads."""
            if kind.startswith("checkout"):
                saved.update(checkout(root, rng, f"branch{run}"))
            elif kind == "truncate":
                saved.update(truncate_all(root, rng))
            else:
                for _ in range(rng.randint(3, 30)):
                    mutator.one()

        if kind != "checkout-rebuild":
            for _ in range(rng.randint(1, 10)):  # something to update, so the run reaches its pipeline
                mutator.one()
        with at_point("before-pipeline", race), mutating(mutator, period_s=0.05 if kind == "background" else 1e9):
            if kind == "checkout-rebuild":
                index.rebuild(scheduler="sync", embedder="hashing")
            else:
                index.update(scheduler="sync")
        restore(saved)  # the checkout back, the writer finishing its write: the content the scan hashed
        mutator.settle()
        index.update(scheduler="sync")  # the quiet run
        problems = check_index(root, max_file_bytes=CAP)
        again = index.update(scheduler="sync")
        if again.files_added or again.files_modified or again.files_deleted or again.files_moved:
            problems.append(f"a second quiet update still changed files: +{again.files_added} "
                            f"~{again.files_modified} -{again.files_deleted} moved {again.files_moved}")
        failures += bool(problems)
        n = sum(1 for p in root.rglob("*.py") if p.is_file())
        log(f"run {run + 1}/{runs} ({kind}, {n} files, {time.perf_counter() - started:.1f}s): "
            + ("OK" if not problems else f"{len(problems)} problems: " + "; ".join(problems[:5])))
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a new temporary folder")
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="codeindex-oracle-") as tmp:
        workdir = args.workdir or Path(tmp)
        failures = campaign(workdir, n_files=args.files, runs=args.runs, seed=args.seed)
    print(f"{args.runs - failures}/{args.runs} runs: index agrees with the disk")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
