"""Progressive, resumable builds measured end to end (issue 18).

    python -m benchmarks.progressive all --corpus DIR [--workdir DIR] [--json OUT] [--fractions 0.25,0.5,0.9]
                                         [--trials 10] [--identifiers NAME:FILE,...] [--parts hits,kill,ctrl-c]
                                         [--hits-stop-after S]

Each part runs cold ``codeindex`` processes on scratch copies of the corpus, with the configured
(default) embedder:

* ``hits``: a first ``codeindex rebuild`` while this process polls search, giving (a) the seconds from
  the start to the first lexical hit on each known identifier (the hit's file is the one defining it),
  and (b) to the first vector hit (a vector search for the identifier returns its file among the top
  10; ``vector_any``: the first time a vector search returns anything at all). (c) Its total time against a
  rebuild of another copy with checkpoints off (``engine.checkpoint_s = 0``: one commit at the end, as
  before checkpoints existed), run right after it in this same process: ``ratio_checkpointed``. With
  ``--hits-stop-after`` only (a) and (b): the rebuild is interrupted once they are measured (a large
  corpus need not be built to the end for them).
* ``kill``: a rebuild SIGKILLed when its embedding reaches each fraction of the clean rebuild's
  vectors, restarted each time, then let finish. From the ``runs`` table: what each killed run had
  committed, hence what the restart after it re-embedded (embedded at the kill minus committed), set
  against the most chunks one checkpoint committed. The final index must equal the clean rebuild's:
  chunks, vector keys, and the results of lexical and vector searches.
* ``ctrl-c``: ``trials`` first builds interrupted with SIGINT in the middle of their embedding (a
  random moment between the 2nd and 6th embed batch, plus up to a second, so the signal lands inside
  a batch); the seconds from the signal to the process's exit, its exit code and message.

``child`` (internal) runs the real CLI with its progress events also written to stdout as JSON lines,
so a parent can act on them; ``--step`` makes it wait for a line on stdin after each embed batch
(the tests use it to kill at an exact batch).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

CHECKPOINTS_OFF = {"CODEINDEX_ENGINE__CHECKPOINT_S": "0"}


# ---------------------------------------------------------------------------------------------- the child


def _child(argv: Sequence[str]) -> int:
    """Run ``codeindex ARGS`` in this process, writing each progress event as a JSON line to stdout."""
    step = bool(argv) and argv[0] == "--step"
    args = list(argv[1:] if step else argv)
    if args and args[0] == "--":
        args = args[1:]
    import codeindex.render as render

    original = render.ProgressRenderer.__call__

    def tee(self: Any, event: Any) -> None:
        line = {"stage": event.stage, "done": event.done, "total": event.total, "t": time.time(),
                "detail": {k: v for k, v in event.detail.items() if isinstance(v, (int, float, str, bool, type(None)))}}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        if step and event.stage == "embed" and event.done:
            sys.stdin.readline()
        original(self, event)

    render.ProgressRenderer.__call__ = tee  # type: ignore[method-assign]
    from codeindex.cli import main

    return main(["-q", *args])


class Child:
    """A ``codeindex`` CLI process whose progress events the parent reads (``events``)."""

    def __init__(self, cli_args: Sequence[str], *, env: dict[str, str] | None = None, step: bool = False) -> None:
        self.step = step
        self.started = time.perf_counter()
        cmd = [sys.executable, "-m", "benchmarks.progressive", "child", *(["--step"] if step else []), "--",
               *cli_args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.PIPE if step else subprocess.DEVNULL, text=True,
                                     env={**os.environ, **(env or {})},
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.stderr = ""

    def events(self) -> Iterator[dict[str, Any]]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                yield json.loads(line)
            except ValueError:
                continue

    def resume(self) -> None:
        """Let a ``--step`` child embed its next batch."""
        if self.step and self.proc.stdin is not None and self.proc.poll() is None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.write("\n")
                self.proc.stdin.flush()

    def finish(self, timeout: float = 7200) -> int:
        """Wait for the process (draining its output, so it never blocks writing events) and return its code."""
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
            self.proc.stdin = None
        _, self.stderr = self.proc.communicate(timeout=timeout)
        return self.proc.returncode


# ---------------------------------------------------------------------------------------------- kill and resume


def runs_table(db_path: Path) -> list[dict[str, Any]]:
    import duckdb

    if not db_path.exists():
        return []
    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = con.execute("SELECT run_id, kind, status, chunks_embedded, wall_s FROM runs ORDER BY run_id").fetchall()
    return [dict(zip(("run_id", "kind", "status", "chunks_embedded", "wall_s"), r, strict=True)) for r in rows]


def kill_and_resume(root: Path, fractions: Sequence[float], n_vectors: int, *, cli_args: Sequence[str] = (),
                    env: dict[str, str] | None = None, step: bool = False) -> dict[str, Any]:
    """Rebuild ``root``, SIGKILLing the run whenever the embedding reaches the next of ``fractions`` of
    ``n_vectors``; restart it each time, then let the last run finish. What each run did, from its
    progress events and the ``runs`` table.

    ``root`` has no index yet (the rebuild is a first build, checkpointed into the live database), or a
    complete one (the rebuild checkpoints into ``build.duckdb`` beside it).
    """
    index_dir = root / ".codeindex"
    target = index_dir / ("build.duckdb" if (index_dir / "meta.duckdb").exists() else "meta.duckdb")
    runs: list[dict[str, Any]] = []
    committed_before = 0
    for fraction in [*fractions, None]:
        child = Child(["rebuild", str(root), *cli_args], env=env, step=step)
        done = 0
        checkpoints: list[int] = []  # this run's embedded count at each of its checkpoints
        killed = False
        for event in child.events():
            if event["stage"] == "embed":
                done = event["done"]
                if fraction is not None and committed_before + done >= fraction * n_vectors:
                    child.proc.send_signal(signal.SIGKILL)
                    killed = True
                    break
                child.resume()
            elif event["stage"] == "checkpoint":
                checkpoints.append(done)
        rc = child.finish()
        runs.append({"fraction": fraction, "rc": rc, "killed": killed, "embedded_at_kill": done if killed else None,
                     "embedded": done, "checkpoints": len(checkpoints),
                     "checkpoint_chunks_max": max((b - a for a, b in zip([0, *checkpoints], checkpoints,
                                                                        strict=False)), default=0),
                     "seconds": round(time.perf_counter() - child.started, 2),
                     "stderr": child.stderr[-400:] if rc not in (0, -signal.SIGKILL) else ""})
        committed_before = sum(r["chunks_embedded"] for r in runs_table(target))
    table = runs_table(root / ".codeindex" / "meta.duckdb")
    committing = [r for r in runs if r["checkpoints"] or not r["killed"]]  # the runs that wrote a row
    for run, row in zip(committing, table[-len(committing):], strict=False):
        run["runs_row"] = row
    for run in runs:
        if run["killed"]:
            committed = run.get("runs_row", {}).get("chunks_embedded", 0)
            run["committed"] = committed
            run["lost_reembedded_next"] = run["embedded_at_kill"] - committed
    return {"runs": runs, "runs_table": table,
            "committed_sum": sum(r["chunks_embedded"] for r in table)}


# ---------------------------------------------------------------------------------------------- comparing indexes


def index_state(root: Path, queries: Sequence[str]) -> dict[str, Any]:
    """What a user observes: chunks, vector keys, and lexical and vector results (k=20) of ``queries``."""
    import duckdb

    from codeindex import Index

    with duckdb.connect(str(root / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        chunks = set(con.execute("SELECT path, start_line, end_line, text FROM chunks").fetchall())
        keys = {r[0] for r in con.execute("SELECT vec_key FROM vectors").fetchall()}
        pending = con.execute("SELECT count(*) FROM vectors WHERE segment IS NULL").fetchall()[0][0]
    index = Index(root)
    searches = {}
    for query in queries:
        for mode in ("lexical", "vector"):
            searches[f"{mode}:{query}"] = [(h.path, h.start_line, h.end_line, round(h.score, 4))
                                           for h in index.search(query, mode=mode, k=20)]
    index.close()
    return {"chunks": chunks, "keys": keys, "pending": pending, "searches": searches}


def compare_states(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    same_searches = sum(1 for q in a["searches"] if a["searches"][q] == b["searches"].get(q))
    return {"chunks_equal": a["chunks"] == b["chunks"], "keys_equal": a["keys"] == b["keys"],
            "chunks": len(a["chunks"]), "vectors": len(a["keys"]), "pending_vectors": a["pending"] + b["pending"],
            "searches_equal": same_searches, "searches": len(a["searches"])}


# ---------------------------------------------------------------------------------------------- parts


def _copy(corpus: Path, target: Path) -> Path:
    shutil.copytree(corpus, target, symlinks=True, ignore=shutil.ignore_patterns(".codeindex"))
    return target


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "codeindex.cli", *args]


def pick_identifiers(root: Path, n: int = 3) -> list[tuple[str, str]]:
    """(identifier, defining file) from files early, midway and late in path order: a ``def``/``class``
    name long enough to be unique, defined in exactly one file of the tree."""
    import re

    files = sorted(p for p in root.rglob("*.py") if ".codeindex" not in p.parts)
    pattern = re.compile(r"^\s*(?:def|class)\s+([A-Za-z_][A-Za-z0-9_]{11,})", re.MULTILINE)
    defined: dict[str, set[str]] = {}
    order: list[tuple[str, str]] = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        for name in pattern.findall(path.read_text(errors="replace")):
            if name not in defined:
                order.append((name, rel))
            defined.setdefault(name, set()).add(rel)
    unique = [(name, rel) for name, rel in order if len(defined[name]) == 1]
    if not unique:
        return []
    picks = [unique[min(len(unique) - 1, round(i * (len(unique) - 1) / max(1, n - 1)))] for i in range(n)]
    return list(dict.fromkeys(picks))


def first_hits(root: Path, identifiers: Sequence[tuple[str, str]], started: float, stop: threading.Event,
               out: dict[str, Any]) -> None:
    """Poll search every 0.5 s until each identifier has its lexical and vector hit (or ``stop``)."""
    from codeindex import Index
    from codeindex.errors import CodeIndexError

    index = Index(root)
    wanted = {(name, mode) for name, _ in identifiers for mode in ("lexical", "vector")}
    while wanted and not stop.is_set():
        for name, rel in identifiers:
            for mode in ("lexical", "vector"):
                if (name, mode) not in wanted:
                    continue
                try:
                    hits = index.search(name, mode=mode, k=10)
                except CodeIndexError:
                    continue  # no index yet, or a commit holds the database
                if hits and f"{mode}_any:{name}" not in out:
                    out[f"{mode}_any:{name}"] = round(time.perf_counter() - started, 2)
                if any(h.path == rel for h in hits):
                    out[f"{mode}:{name}"] = round(time.perf_counter() - started, 2)
                    wanted.discard((name, mode))
        index.close()
        stop.wait(0.5)
    index.close()


def part_hits(corpus: Path, work: Path, identifiers: Sequence[tuple[str, str]],
              stop_after: float | None = None) -> dict[str, Any]:
    """(a), (b) and (c). ``stop_after``: only (a) and (b): the rebuild is interrupted (Ctrl-C) once every
    identifier has its lexical hit and some vector search answers, or after that many seconds."""
    checkpointed = _copy(corpus, work / "checkpointed")
    hits: dict[str, Any] = {}
    stop = threading.Event()
    started = time.perf_counter()
    proc = subprocess.Popen(_cli("-q", "rebuild", str(checkpointed)), stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    poller = threading.Thread(target=first_hits, args=(checkpointed, identifiers, started, stop, hits), daemon=True)
    poller.start()
    if stop_after is not None:
        lexical = [f"lexical:{name}" for name, _ in identifiers]
        while proc.poll() is None and time.perf_counter() - started < stop_after:
            if all(k in hits for k in lexical) and any(k.startswith("vector_any:") for k in hits):
                break
            time.sleep(0.5)
        signal_at = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate()
        stop.set()
        poller.join()
        return {"identifiers": [f"{n} ({rel})" for n, rel in identifiers], **hits,
                "interrupted_at_s": round(signal_at - started, 2),
                "ctrl_c_latency_s": round(time.perf_counter() - signal_at, 3), "rc": proc.returncode,
                "message": err.strip().splitlines()[-2:],
                "runs": runs_table(checkpointed / ".codeindex" / "meta.duckdb")}
    _, err = proc.communicate()
    checkpointed_s = time.perf_counter() - started
    stop.set()
    poller.join()
    if proc.returncode:
        raise RuntimeError(f"checkpointed rebuild failed: {err[-500:]}")
    reference = _copy(corpus, work / "reference")
    started = time.perf_counter()
    done = subprocess.run(_cli("-q", "rebuild", str(reference)), env={**os.environ, **CHECKPOINTS_OFF},
                          capture_output=True, text=True, check=False)
    reference_s = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"reference rebuild failed: {done.stderr[-500:]}")
    out: dict[str, Any] = {"identifiers": [f"{n} ({rel})" for n, rel in identifiers], **hits,
                           "checkpointed_s": round(checkpointed_s, 2), "non_checkpointed_s": round(reference_s, 2),
                           "ratio_checkpointed": round(checkpointed_s / reference_s, 4),
                           "checkpointed_runs": runs_table(checkpointed / ".codeindex" / "meta.duckdb")}
    for name, _ in identifiers:  # (b) when the finished index never ranks the file: any vector result
        out.setdefault(f"vector:{name}", None)
    return out


def part_kill(corpus: Path, work: Path, reference: Path, fractions: Sequence[float],
              queries: Sequence[str]) -> dict[str, Any]:
    import duckdb

    with duckdb.connect(str(reference / ".codeindex" / "meta.duckdb"), read_only=True) as con:
        n_vectors = con.execute("SELECT count(*) FROM vectors").fetchall()[0][0]
    root = _copy(corpus, work / "killed")
    result = kill_and_resume(root, fractions, n_vectors)
    result["n_vectors"] = n_vectors
    result["final_vs_clean"] = compare_states(index_state(root, queries), index_state(reference, queries))
    return result


def part_ctrl_c(corpus: Path, work: Path, trials: int, seed: int = 18) -> dict[str, Any]:
    rng = random.Random(seed)
    latencies, records = [], []
    for trial in range(trials):
        root = _copy(corpus, work / f"ctrl-c-{trial}")
        child = Child(["rebuild", str(root)])
        after_batches = rng.randint(2, 6)
        batches = 0
        sent = None
        for event in child.events():
            if event["stage"] == "embed" and event["done"]:
                batches += 1
                if batches >= after_batches:
                    time.sleep(rng.uniform(0.0, 1.0))
                    sent = time.perf_counter()
                    child.proc.send_signal(signal.SIGINT)
                    break
        rc = child.finish(timeout=600)
        exited = time.perf_counter()
        if sent is None:
            records.append({"trial": trial, "error": f"never embedded {after_batches} batches", "rc": rc})
            continue
        latencies.append(exited - sent)
        records.append({"trial": trial, "after_batches": after_batches, "latency_s": round(exited - sent, 3),
                        "rc": rc, "message": child.stderr.strip().splitlines()[-2:]})
        shutil.rmtree(root, ignore_errors=True)
    return {"latencies_s": [round(x, 3) for x in latencies],
            "median_s": round(statistics.median(latencies), 3) if latencies else None,
            "max_s": round(max(latencies), 3) if latencies else None, "trials": records}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "child":
        return _child(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.progressive")
    parser.add_argument("mode", choices=["all"])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--fractions", default="0.25,0.5,0.9")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--identifiers", default="", help="NAME:FILE,...; default: picked from the tree")
    parser.add_argument("--parts", default="hits,kill,ctrl-c")
    parser.add_argument("--hits-stop-after", type=float, default=None,
                        help="hits: interrupt the rebuild once the hits are found (or after S seconds): (a), (b) only")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="progressive-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus = args.corpus.resolve()
    identifiers = ([tuple(x.split(":", 1)) for x in args.identifiers.split(",") if x]
                   or pick_identifiers(corpus))
    results: dict[str, Any] = {"corpus": str(corpus), "embedder": os.environ.get("CODEINDEX_EMBEDDER__BACKEND",
                                                                                 "default (onnx)")}

    def save() -> None:
        text = json.dumps(results, indent=2, default=str)
        if args.json:
            args.json.write_text(text)
        print(text, flush=True)

    if "hits" in parts:
        results["hits"] = part_hits(corpus, work, identifiers, args.hits_stop_after)  # type: ignore[arg-type]
        save()
    reference = work / "reference"
    if "kill" in parts:
        if not (reference / ".codeindex" / "meta.duckdb").exists():
            _copy(corpus, reference)
            subprocess.run(_cli("-q", "rebuild", str(reference)), env={**os.environ, **CHECKPOINTS_OFF}, check=True)
        queries = [name for name, _ in identifiers] + ["parse the configuration file", "retry a failed request"]
        results["kill"] = part_kill(corpus, work, reference, [float(f) for f in args.fractions.split(",")], queries)
        save()
    if "ctrl-c" in parts:
        results["ctrl_c"] = part_ctrl_c(corpus, work, args.trials)
        save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
