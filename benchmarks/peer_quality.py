"""mcp-vector-search on the agent benchmark's questions (``benchmarks/agent_quality.py --peer``).

The peer runs in its own venv (``benchmarks/peer.py`` installs it, same MiniLM model as ours) on its
own copy of the codebase: ``init``, then its default ``index``. Its searches run as its CLI's
``search --json --no-rerank`` does (``run_search`` with the CLI's defaults: hybrid, MMR, query
expansion, quality-aware ranking; the cross-encoder reranker is off because its model downloads at
first use), all questions in one process so its model loads once: a cold ``search`` process costs
30-60 s on a shared machine, and the figures are ranks, not times.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import BenchmarkError, copy_corpus
from benchmarks.peer import _model_path, _peer, _peer_env, ensure_peer_venv, peer_python

QUERY = r"""
import asyncio, json, sys
from pathlib import Path
import mcp_vector_search.cli.output as output
from mcp_vector_search.cli.commands.search import run_search
root, spec_path, out_path = sys.argv[1:4]
spec = json.load(open(spec_path))
captured = []
output.print_json = lambda data, *args, **kwargs: captured.append(data)
results = []
for query in spec["queries"]:
    captured.clear()
    asyncio.run(run_search(Path(root), query, limit=spec["k"], json_output=True, use_rerank=False))
    data = captured[-1] if captured else []
    results.append([[r["file_path"], r["start_line"], r["end_line"]] for r in data])
json.dump(results, open(out_path, "w"))
"""


def peer_results(codebase: Path, work: Path, queries: Sequence[str], k: int, cache_dir: Path) -> list[list[Any]]:
    """The peer's top ``k`` ``[path, first line, last line]`` for every query."""
    python = peer_python(cache_dir) or ensure_peer_venv(cache_dir)
    root = copy_corpus(codebase, work / "agent-peer")
    args = ["--project-root", str(root)]
    _peer(python, [*args, "init", "--embedding-model", _model_path(python), "--no-auto-index", "--no-mcp",
                   "--no-auto-indexing"], stdin="y\n" * 10)
    _peer(python, ["index", *args])
    spec, out = work / "peer-spec.json", work / "peer-out.json"
    spec.write_text(json.dumps({"queries": list(queries), "k": k}))
    proc = subprocess.run([str(python), "-c", QUERY, str(root), str(spec), str(out)], env=_peer_env(),
                          capture_output=True, text=True, check=False, cwd=root)  # it resolves paths from the cwd
    if proc.returncode != 0:
        raise BenchmarkError(f"peer searches failed: {(proc.stderr or proc.stdout).strip()[-600:]}")
    results: list[list[Any]] = json.loads(out.read_text())
    for hits in results:
        for hit in hits:
            path = Path(hit[0])
            if path.is_absolute():
                hit[0] = path.relative_to(root).as_posix()
    return results
