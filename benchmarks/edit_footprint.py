"""Bytes an ``update`` writes for a one-file edit on a large index.

    python -m benchmarks.edit_footprint --corpus DIR [--index-dir DIR] [--edits 3]

The corpus must be a scratch copy: the edited file is restored afterwards (and updated back), but
the tree is written to. For each edit (append a small function to one Python file, then
``Index.update()`` in this process) it reports:

* ``files``: bytes of index files that are new or whose size/mtime changed, counting new files whole
  and ``meta.duckdb`` by its growth (DuckDB rewrites blocks in place, so growth is a lower bound);
* ``syscall``: bytes passed to ``write()`` by this process during the update (``wchar`` of
  /proc/self/io: staging Parquet, segment files, DuckDB blocks and WAL; an upper bound, since it
  also counts files deleted before the update ends);
* ``disk``: ``write_bytes`` of /proc/self/io (bytes this process caused to go to storage) when the
  kernel reports it.

The first edit after a rebuild is reported separately: DuckDB's first write to a freshly swapped
database can differ from the steady state.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codeindex import Index


def _io() -> dict[str, int]:
    out = {}
    with open("/proc/self/io") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            out[key.strip()] = int(value)
    return out


def _files(index_dir: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(index_dir)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in index_dir.rglob("*") if p.is_file()}


def measure_update(index: Index) -> dict[str, Any]:
    before = _files(index.index_dir)
    io0 = _io()
    started = time.perf_counter()
    report = index.update()
    wall = time.perf_counter() - started
    io1 = _io()
    after = _files(index.index_dir)
    files_bytes = 0
    changed = []
    for name, (size, mtime) in after.items():
        old = before.get(name)
        if old is None:
            files_bytes += size
            changed.append(f"+{name} {size}")
        elif old != (size, mtime):
            files_bytes += max(0, size - old[0])
            changed.append(f"~{name} {size - old[0]:+d}")
    return {"files_bytes": files_bytes, "syscall_bytes": io1["wchar"] - io0["wchar"],
            "disk_bytes": io1.get("write_bytes", 0) - io0.get("write_bytes", 0), "wall_s": round(wall, 3),
            "chunks_written": report.chunks_written, "changed": changed}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--index-dir", type=Path, default=None)
    parser.add_argument("--embedder", default="hashing")
    parser.add_argument("--edits", type=int, default=3)
    args = parser.parse_args(argv)
    index_dir = args.index_dir or Path(tempfile.gettempdir()) / f"codeindex-bench-{args.corpus.name}-{args.embedder}"
    index = Index(args.corpus, index_dir=index_dir, **{"embedder.backend": args.embedder})
    if not index.exists():
        index.rebuild()
    index.update()  # settle: any pending stat-only changes are not part of the edit
    files = sorted(args.corpus.rglob("*.py"))
    rng = random.Random(7)
    rows = []
    for i, path in enumerate(rng.sample(files, args.edits)):
        original = path.read_bytes()
        stat = os.stat(path)
        path.write_bytes(original + f"\n\ndef footprint_edit_{i}(x: int) -> int:\n    return x + {i}\n".encode())
        try:
            rows.append(measure_update(index) | {"file": str(path.relative_to(args.corpus))})
        finally:
            path.write_bytes(original)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            index.update()
    print(f"{'file':50} {'chunks':>6} {'files KB':>9} {'write() KB':>10} {'disk KB':>8} {'wall s':>7}")
    for r in rows:
        print(f"{r['file'][-50:]:50} {r['chunks_written']:>6} {r['files_bytes'] / 1024:>9.1f} "
              f"{r['syscall_bytes'] / 1024:>10.1f} {r['disk_bytes'] / 1024:>8.1f} {r['wall_s']:>7.2f}")
    for r in rows:
        print("  " + r["file"] + ": " + ", ".join(r["changed"]))
    return {"edits": rows, "median_syscall_bytes": statistics.median(r["syscall_bytes"] for r in rows),
            "median_files_bytes": statistics.median(r["files_bytes"] for r in rows)}


if __name__ == "__main__":
    main()
