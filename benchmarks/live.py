"""``--scenarios live``: `codeindex serve` measured through the real MCP client (stdio, a subprocess).

Figures, all from one run on the indexed copy the harness shares:

* ``edit_to_searchable_p50_s`` / ``_p95_s`` over ``edits`` edits of one median-size file: from the
  write to the first MCP ``search`` answer that returns the new text (a unique word appended as a
  comment, searched lexically, so only the new content can match); ``PAUSE_BETWEEN_EDITS_S`` apart.
  Beside it ``cold_cli_update_s``: a cold ``codeindex update`` process after the same kind of edit,
  with the server stopped.
* ``warm_search_p50_ms`` / ``_p95_ms``: MCP ``search`` round trips (hybrid, k 10, the query embedded
  each time) beside ``cold_cli_search_p50_s`` / ``_p95_s``: cold ``codeindex search`` processes of the
  same queries (run before the server starts, so no held connection delays them).
* ``idle_cpu_percent`` and ``rss_mb`` of the server process over ``IDLE_WINDOW_S`` once everything
  (the edits' updates, the idle compaction) has settled.
"""

from __future__ import annotations

import contextlib
import random
import string
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import BenchmarkError, Context, add_spread, child_env, codeindex_cli, percentile, pick_edit_file

IDLE_WINDOW_S = 10.0
SETTLE_S = 8.0
"""Quiet time before the idle window: longer than the loop's idle-compaction delay (5 s)."""
DEADLINE_S = 300.0
PAUSE_BETWEEN_EDITS_S = 2.0
"""An agent's think time between an edit and the next one: the server reads the next update's
starting state in such pauses (``live/freshness.py``); the time measured runs from a write on."""


def _word(rng: random.Random) -> str:
    """A word no corpus contains, tokenized as one term (lowercase letters only)."""
    return "zqv" + "".join(rng.choice(string.ascii_lowercase) for _ in range(10))


def _comment(path: Path) -> bytes:
    return b"#" if path.suffix in (".py", ".rb", ".sh", ".toml", ".yaml", ".yml") else b"//"


class _Server:
    def __init__(self, client: Any) -> None:
        self.client = client

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, arguments)
        if result.is_error:
            raise BenchmarkError(f"live: {tool} failed: {result.content[0].text}")
        return dict(result.structured_content)

    async def live(self) -> dict[str, Any]:
        return (await self.call("status"))["live"]

    async def settle(self, quiet_s: float) -> dict[str, Any]:
        """Wait until nothing is pending or running and no update has run for ``quiet_s``."""
        import anyio

        deadline = time.monotonic() + DEADLINE_S
        quiet_since = time.monotonic()
        last = None
        while time.monotonic() < deadline:
            live = await self.live()
            busy = live["updating"] or live["housekeeping"] or live["pending_paths"] or live["full_pass_pending"] \
                or not live["fresh"]
            key = (live["updates"], live["last_update_at"], bool(busy))
            if busy or key != last:
                quiet_since = time.monotonic()
                last = key
            elif time.monotonic() - quiet_since >= quiet_s:
                return live
            await anyio.sleep(0.2)
        raise BenchmarkError("live: the server never settled")


@contextlib.asynccontextmanager
async def _serving(root: Path, errlog: Path) -> AsyncIterator[_Server]:
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "codeindex.cli", "serve", str(root)],
                                   env=child_env())
    with errlog.open("w") as log:
        async with Client(stdio_client(params, errlog=log), read_timeout_seconds=DEADLINE_S) as client:
            yield _Server(client)


async def _measure(ctx: Context, root: Path, queries: list[str], figures: dict[str, Any]) -> None:
    import anyio
    import psutil

    n_edits = 3 if ctx.smoke else 20
    target = pick_edit_file(root)
    rel = target.relative_to(root).as_posix()
    original = target.read_bytes()
    rng = random.Random(17)
    async with _serving(root, ctx.work / "live-server.log") as server:
        live = await server.settle(1.0)  # the catch-up pass at start
        pid = int(live["pid"])
        figures["chunks"] = int((await server.call("status"))["index"]["chunks"])
        for q in queries[:5]:
            await server.call("search", query=q, k=10)  # warm: model session, segments, pages
        ms = []
        for q in queries:
            start = time.perf_counter()
            await server.call("search", query=q, k=10)
            ms.append((time.perf_counter() - start) * 1000)
        figures["warm_search_queries"] = len(ms)
        figures["warm_search_p50_ms"] = percentile(ms, 0.5)
        figures["warm_search_p95_ms"] = percentile(ms, 0.95)

        seconds, polls, stale, server_update_s = [], [], 0, []
        try:
            for _ in range(n_edits):
                word = _word(rng)
                target.write_bytes(original + b"\n" + _comment(target) + b" " + word.encode() + b"\n")
                start = time.perf_counter()
                n = 0
                while True:
                    n += 1
                    answer = await server.call("search", query=word, k=5, mode="lexical")
                    if any(h["path"] == rel for h in answer["results"]):
                        break
                    stale += int(not answer["fresh"])
                    if time.perf_counter() - start > DEADLINE_S:
                        raise BenchmarkError(f"live: edit of {rel} never became searchable")
                seconds.append(time.perf_counter() - start)
                polls.append(n)
                server_update_s.append(float((await server.live())["last_update"]["wall_s"]))
                await anyio.sleep(PAUSE_BETWEEN_EDITS_S)
        finally:
            target.write_bytes(original)
        figures["file"] = rel
        figures["edits"] = len(seconds)
        figures["pause_between_edits_s"] = PAUSE_BETWEEN_EDITS_S
        figures["edit_to_searchable_p50_s"] = percentile(seconds, 0.5)
        figures["edit_to_searchable_p95_s"] = percentile(seconds, 0.95)
        figures["edit_to_searchable_max_s"] = max(seconds)
        figures["searches_per_edit_max"] = max(polls)
        figures["stale_answers"] = stale
        add_spread(figures, "server_update_s", server_update_s)

        live = await server.settle(SETTLE_S)
        process = psutil.Process(pid)
        cpu_before = process.cpu_times()
        wall_before = time.perf_counter()
        await anyio.sleep(IDLE_WINDOW_S)
        cpu_after = process.cpu_times()
        busy = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
        figures["idle_window_s"] = time.perf_counter() - wall_before
        figures["idle_cpu_percent"] = 100.0 * busy / figures["idle_window_s"]
        figures["rss_mb"] = process.memory_info().rss / 2**20
        figures["server_updates"] = int(live["updates"])


def run_scenario(ctx: Context, search_queries: Callable[[Path, int], list[str]]) -> dict[str, Any]:
    """The figures above; ``search_queries`` draws the queries from the tree (``scenarios.search_queries``)."""
    import anyio

    root = ctx.indexed()
    queries = search_queries(root, 30 if ctx.smoke else 100)
    figures: dict[str, Any] = {"embedder": ctx.backend}
    cold = [codeindex_cli(["search", q, "--root", str(root), "-k", "10", "--json"]).seconds
            for q in queries[: 3 if ctx.smoke else 10]]
    figures["cold_cli_search_p50_s"] = percentile(cold, 0.5)
    figures["cold_cli_search_p95_s"] = percentile(cold, 0.95)
    figures["cold_cli_searches"] = len(cold)

    anyio.run(_measure, ctx, root, queries, figures)

    target = pick_edit_file(root)
    original = target.read_bytes()
    rng = random.Random(71)
    times = []
    try:
        for _ in range(ctx.repeat):
            target.write_bytes(original + b"\n" + _comment(target) + b" " + _word(rng).encode() + b"\n")
            run = codeindex_cli(["update", str(root), "--json"])
            if run.json()["files_modified"] != 1:
                raise BenchmarkError(f"live: the cold update saw {run.json()['files_modified']} modified files")
            times.append(run.seconds)
    finally:
        target.write_bytes(original)
        codeindex_cli(["update", str(root)])
    cold_update = add_spread(figures, "cold_cli_update_s", times)
    figures["ratio_cold_update_vs_live_p50"] = cold_update / figures["edit_to_searchable_p50_s"]
    figures["ratio_cold_search_vs_warm_p50"] = figures["cold_cli_search_p50_s"] * 1000 / figures["warm_search_p50_ms"]
    return figures
