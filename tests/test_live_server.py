"""`codeindex serve` driven by the MCP SDK's own client over stdio, the server a real subprocess.

Every wait here is for an event (a result appears, a status field changes) with a generous deadline
that only turns a hang into a failure; nothing asserts how fast anything is (see
``benchmarks --scenarios live`` for that).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from crash_helpers import check_invariants, make_tree, read_state
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from codeindex import Index
from codeindex.errors import ExitCode

T = TypeVar("T")
DEADLINE_S = 90.0
TOOLS = {"search", "symbol", "read", "status", "update"}


class Served:
    """A client session with one `codeindex serve` subprocess."""

    def __init__(self, client: Client, errlog: Path) -> None:
        self.client = client
        self.errlog = errlog

    async def call(self, tool: str, **arguments: Any) -> Any:
        return await self.client.call_tool(tool, arguments)

    async def ok(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self.call(tool, **arguments)
        assert not result.is_error, f"{tool} failed: {result.content[0].text}\nserver log:\n{self.log()}"
        return dict(result.structured_content)

    async def live(self) -> dict[str, Any]:
        return (await self.ok("status"))["live"]

    async def until(self, check: Callable[[], Awaitable[T | None]], what: str, deadline_s: float = DEADLINE_S) -> T:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            value = await check()
            if value:
                return value
            await anyio.sleep(0.05)
        raise AssertionError(f"never happened: {what}\nserver log:\n{self.log()}")

    async def found(self, word: str, **filters: Any) -> list[dict[str, Any]]:
        """Search until ``word`` is in a result's text (the watcher, not `update`, must get it there)."""
        async def hits() -> list[dict[str, Any]] | None:
            out = (await self.ok("search", query=word, k=5, mode="lexical", **filters))["results"]
            return [h for h in out if word in h["snippet"]] or None

        return await self.until(hits, f"a search returning {word!r}")

    def log(self) -> str:
        return self.errlog.read_text(errors="replace")[-4000:] if self.errlog.exists() else ""


def server_env(**extra: str) -> dict[str, str]:
    keep = ("PYTHONPATH", "HF_HUB_OFFLINE", "ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME", "CODEINDEX_TEST_CORPUS")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, **extra}


@contextlib.asynccontextmanager
async def serving(root: Path, log_dir: Path, *args: str, **env: str) -> AsyncIterator[Served]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "codeindex.cli", "serve", str(root), *args],
                                   env=server_env(**env))
    errlog = log_dir / f"server-{time.monotonic_ns()}.log"
    with errlog.open("w") as log:
        async with Client(stdio_client(params, errlog=log), read_timeout_seconds=DEADLINE_S) as client:
            served = Served(client, errlog)
            # the catch-up pass at start is done before the first search answers (it waits for it)
            await served.until(lambda: _caught_up(served), "the server's first pass")
            yield served


async def _caught_up(served: Served) -> bool:
    live = await served.live()
    return live["updates"] >= 1 and live["fresh"]


def _run(body: Callable[[], Awaitable[None]]) -> None:
    anyio.run(body)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = make_tree(tmp_path / "tree")
    Index(root).rebuild()
    return root


# ---------------------------------------------------------------------------------------------- the tools


def test_the_tools_are_listed_and_answer(tree: Path, tmp_path: Path) -> None:
    async def body() -> None:
        async with serving(tree, tmp_path) as s:
            assert {t.name for t in (await s.client.list_tools()).tools} == TOOLS
            assert (await s.ok("search", query="slugify", k=1))["results"][0]["path"] == "util/text.py"
            bad = await s.call("search", query="slugify", k=0)
            assert bad.is_error and "k" in bad.content[0].text
            assert (await s.ok("symbol", name="slugify"))["definitions"][0]["path"] == "util/text.py"
    _run(body)



@pytest.mark.slow
def test_every_tool_over_stdio_and_edits_are_searchable_without_update(tree: Path, tmp_path: Path) -> None:
    async def body() -> None:
        async with serving(tree, tmp_path) as s:
            listed = await s.client.list_tools()
            assert {t.name for t in listed.tools} == TOOLS
            for tool in listed.tools:
                assert tool.description and tool.input_schema["type"] == "object", tool.name
            assert set(next(t for t in listed.tools if t.name == "search").input_schema["properties"]) >= \
                {"query", "k", "mode", "language", "path", "kind", "symbol"}

            hits = (await s.ok("search", query="haversine distance between two points", k=3))
            assert hits["fresh"] is True
            first = hits["results"][0]
            assert first["path"] == "geo/distance.py"
            assert set(first) >= {"path", "start_line", "end_line", "symbol", "score", "snippet"}
            python_only = await s.ok("search", query="parse query string", k=10, language=["javascript"])
            assert {h["language"] for h in python_only["results"]} == {"javascript"}
            in_gen = await s.ok("search", query="Inventory", k=10, path="gen/**")
            assert in_gen["results"] and all(h["path"].startswith("gen/") for h in in_gen["results"])

            defs = (await s.ok("symbol", name="Inventory3"))["definitions"]
            assert [(d["path"], d["kind"], d["match"]) for d in defs] == [("gen/mod3.py", "class", "suffix")]
            qualified = (await s.ok("symbol", name="RateLimiter.Allow"))["definitions"]
            assert [(d["path"], d["kind"], d["match"]) for d in qualified] == [("web/server.go", "method", "suffix")]
            exact = (await s.ok("symbol", name="web.server.RateLimiter.Allow"))["definitions"]
            assert exact[0]["match"] == "exact" and exact[0]["start_line"] == qualified[0]["start_line"]

            lines = await s.ok("read", path=defs[0]["path"], start_line=defs[0]["start_line"],
                               end_line=defs[0]["start_line"] + 1, context=1)
            on_disk = (tree / "gen" / "mod3.py").read_text().splitlines()
            start = defs[0]["start_line"]
            assert (lines["start_line"], lines["end_line"]) == (start - 1, start + 2)
            assert lines["text"].split("\n") == on_disk[start - 2 : start + 2]
            assert lines["changed_since_indexed"] is False

            status = await s.ok("status")
            assert status["index"]["files"] > 10 and status["index"]["chunks"] > status["index"]["files"]
            assert status["live"]["watching"] is True and status["live"]["pending_paths"] == 0

            updated = await s.ok("update")
            assert updated["done"] is True and updated["report"]["files_seen"] == status["index"]["files"]

            # an edit on disk is found by search alone: the watcher and a scoped update get it there
            (tree / "gen" / "fresh_edit.py").write_text("def quokka_ledger_balance(x):\n    return x\n")
            assert (await s.found("quokka_ledger_balance"))[0]["path"] == "gen/fresh_edit.py"
            mod = tree / "gen" / "mod3.py"
            mod.write_text(mod.read_text() + "\n\ndef wombat_refund_total(order):\n    return order\n")
            assert (await s.found("wombat_refund_total"))[0]["path"] == "gen/mod3.py"
            read_back = await s.ok("read", path="gen/mod3.py", start_line=1, end_line=400)
            assert "wombat_refund_total" in read_back["text"]

            # a deleted file never appears once the deletion is seen, in any search
            (tree / "gen" / "fresh_edit.py").unlink()

            async def gone() -> bool:
                out = await s.ok("search", query="quokka_ledger_balance", k=10, mode="lexical")
                return all(h["path"] != "gen/fresh_edit.py" for h in out["results"])

            await s.until(gone, "the deleted file leaving the results")
            for query in ("quokka ledger balance", "quokka_ledger_balance", "def x return"):
                for mode in ("hybrid", "vector", "lexical"):
                    out = await s.ok("search", query=query, k=50, mode=mode)
                    assert all(h["path"] != "gen/fresh_edit.py" for h in out["results"]), (query, mode)
            assert (await s.ok("symbol", name="quokka_ledger_balance"))["definitions"] == []
            refused = await s.call("read", path="gen/fresh_edit.py")
            assert refused.is_error and "not an indexed file" in refused.content[0].text

            # bad arguments are tool errors, and the next call works
            for tool, arguments in [("search", {"query": "x", "k": 0}), ("search", {"query": "x", "mode": "fuzzy"}),
                                    ("search", {}), ("read", {"path": "../../etc/passwd"}),
                                    ("read", {"path": "gen/mod3.py", "start_line": 9, "end_line": 2}),
                                    ("symbol", {"name": ""}), ("search", {"query": "   "})]:
                bad = await s.call(tool, **arguments)
                assert bad.is_error, (tool, arguments)
                assert (await s.ok("search", query="slugify", k=1))["results"], "the server must keep serving"
            typed = await s.call("read", path="../../etc/passwd")
            assert typed.content[0].text.splitlines()[0].startswith("Error executing tool read: codeindex: error:")
            assert typed.content[0].text.splitlines()[1].startswith("hint: ")
    _run(body)
    for path in {r[0] for r in read_state(tree).chunks}:
        assert (tree / path).exists()
    check_invariants(tree)


@pytest.mark.slow
def test_a_server_on_a_tree_without_an_index_builds_it(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "fresh")

    async def body() -> None:
        async with serving(root, tmp_path) as s:
            assert (await s.ok("search", query="slugify", k=1))["results"][0]["path"] == "util/text.py"
    _run(body)


# ---------------------------------------------------------------------------------------------- faults


@pytest.mark.slow
def test_the_tree_renamed_or_removed_while_serving_is_a_clear_error(tree: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved-away"

    async def body() -> None:
        async with serving(tree, tmp_path) as s:
            tree.rename(moved)
            await s.until(lambda: _gone(s), "the server noticing the tree is gone")
            for tool, arguments in [("search", {"query": "slugify"}), ("symbol", {"name": "slugify"}),
                                    ("read", {"path": "util/text.py"}), ("update", {})]:
                failed = await s.call(tool, **arguments)
                assert failed.is_error, tool
                assert "was moved or removed" in failed.content[0].text and "hint: " in failed.content[0].text
            assert (await s.live())["tree_gone_since"]  # status still answers

            moved.rename(tree)  # back: watching resumes, with a full pass
            await s.until(lambda: _watching(s), "watching again after the tree came back")
            (tree / "util" / "back.py").write_text("def platypus_after_return():\n    return 1\n")
            assert (await s.found("platypus_after_return"))[0]["path"] == "util/back.py"

            shutil.rmtree(tree)
            await s.until(lambda: _gone(s), "the server noticing the tree was removed")
            failed = await s.call("search", query="slugify")
            assert failed.is_error and "was moved or removed" in failed.content[0].text
            assert (await s.ok("status"))["live"]["tree_gone_since"]
            assert not tree.exists(), "an update must not create the removed tree again"
    _run(body)


async def _gone(s: Served) -> bool:
    return bool((await s.live())["tree_gone_since"])


async def _watching(s: Served) -> bool:
    live = await s.live()
    return bool(live["watching"] and live["fresh"] and not live["updating"])


@pytest.mark.slow
def test_ten_thousand_files_changed_at_once_are_one_update(tree: Path, tmp_path: Path) -> None:
    """A burst (here 10,000 new files written as fast as possible, like a branch switch) is one update."""
    config = (tree / ".codeindex.toml").read_text()
    # a quiet window wide enough that a busy 2-core CI machine never splits the burst by pausing the writer
    (tree / ".codeindex.toml").write_text(config + "\n[live]\nquiet_ms = 1500\nmax_delay_ms = 120000\n")
    Index(tree).update()
    n = 10_000

    async def body() -> None:
        async with serving(tree, tmp_path) as s:
            before = (await s.live())["updates"]
            branch = tree / "branch"
            branch.mkdir()
            for i in range(n):
                (branch / f"f{i:05d}.py").write_text(f"def branch_function_{i}():\n    return {i}\n")

            async def settled() -> dict[str, Any] | None:
                live = await s.live()
                done = live["updates"] > before and not live["updating"] and not live["pending_paths"]
                return live if done and live["fresh"] else None

            # 38 s on an idle 2-core machine, over 90 s on a loaded CI one (stop 25); 400 s is inside pytest-timeout
            live = await s.until(settled, "the burst indexed", deadline_s=400.0)
            assert live["updates"] - before == 1, live
            assert live["last_update"]["files_added"] == n
            assert (await s.found(f"branch_function_{n - 1}"))[0]["path"] == f"branch/f{n - 1:05d}.py"
    _run(body)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["mid-commit", "after-db-commit"])
def test_server_killed_mid_update_leaves_old_or_new_and_the_next_start_converges(
        tree: Path, tmp_path: Path, point: str) -> None:
    old_state = read_state(tree)
    marker = tmp_path / "paused"
    edited = tree / "gen" / "mod0.py"
    new_text = edited.read_text() + "\n\ndef armadillo_checkpoint(order_id: int) -> bool:\n    return order_id > 0\n"
    expected = tmp_path / "expected"
    shutil.copytree(tree, expected, ignore=shutil.ignore_patterns(".codeindex"))
    (expected / "gen" / "mod0.py").write_text(new_text)
    Index(expected).rebuild()
    new_state = read_state(expected)

    async def killed() -> None:
        with contextlib.suppress(Exception):  # the connection dies with the server
            async with serving(tree, tmp_path, CODEINDEX_PAUSE_AT=f"{point}:120",
                               CODEINDEX_PAUSE_MARKER=str(marker)) as s:
                pid = (await s.live())["pid"]
                edited.write_text(new_text)
                await s.until(lambda: _exists(marker), f"the server's update pausing at {point}")
                os.kill(pid, signal.SIGKILL)
                await s.call("status")
    _run(killed)
    check_invariants(tree)
    assert read_state(tree) in (old_state, new_state)

    async def restarted() -> None:
        async with serving(tree, tmp_path) as s:
            assert (await s.found("armadillo_checkpoint"))[0]["path"] == "gen/mod0.py"
    _run(restarted)
    check_invariants(tree)
    assert read_state(tree) == new_state


async def _exists(path: Path) -> bool:
    return path.exists()


@pytest.mark.slow
def test_two_servers_on_one_index_the_second_refuses(tree: Path, tmp_path: Path, cli) -> None:
    async def body() -> None:
        async with serving(tree, tmp_path) as s:
            pid = (await s.live())["pid"]
            second_server = await anyio.to_thread.run_sync(lambda: cli("serve", str(tree), timeout=120))
            a_watcher = await anyio.to_thread.run_sync(lambda: cli("watch", str(tree), timeout=120))
            for second in (second_server, a_watcher):
                assert second.returncode == ExitCode.LOCKED == 4, second.stderr
                assert f"already kept live by `codeindex serve` (pid {pid}" in second.stderr
                assert "hint: use the one already running" in second.stderr
            # writers are not locked out: a CLI update while the server idles runs, and the server sees it
            (tree / "gen" / "cli_edit.py").write_text("def pangolin_from_cli():\n    return 2\n")
            updated = await anyio.to_thread.run_sync(lambda: cli("update", str(tree), "--wait", "--json"))
            assert updated.returncode == 0, updated.stderr
            assert (await s.found("pangolin_from_cli"))[0]["path"] == "gen/cli_edit.py"
            assert (await s.ok("search", query="slugify", k=1))["results"]
    _run(body)
    check_invariants(tree)


@pytest.mark.slow
def test_a_cli_update_while_the_server_updates_exits_4(tree: Path, tmp_path: Path, cli) -> None:
    marker = tmp_path / "paused"

    async def body() -> None:
        async with serving(tree, tmp_path, CODEINDEX_PAUSE_AT="after-pipeline:5",
                           CODEINDEX_PAUSE_MARKER=str(marker)) as s:
            pid = (await s.live())["pid"]
            (tree / "gen" / "during.py").write_text("def echidna_during_update():\n    return 3\n")
            await s.until(lambda: _exists(marker), "the server's update holding the writer lock")
            second = await anyio.to_thread.run_sync(lambda: cli("update", str(tree)))
            assert second.returncode == ExitCode.LOCKED, second.stderr
            assert f"locked by pid {pid}" in second.stderr
            answer = await s.ok("search", query="slugify", k=1)  # readers are never blocked by it
            assert answer["results"][0]["path"] == "util/text.py"
            assert (await s.found("echidna_during_update"))[0]["path"] == "gen/during.py"
    _run(body)


# ---------------------------------------------------------------------------------------------- watch


def test_watch_keeps_the_index_fresh_and_stops_on_ctrl_c(tree: Path, tmp_path: Path) -> None:
    import subprocess

    proc = subprocess.Popen([sys.executable, "-m", "codeindex.cli", "watch", str(tree), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())  # the catch-up pass
        assert first["kind"] == "update" and first["files_seen"] > 0
        (tree / "gen" / "watched.py").write_text("def narwhal_watch_mode():\n    return 4\n")
        report = json.loads(proc.stdout.readline())
        assert report["files_added"] == 1
        hits = Index(tree).search("narwhal_watch_mode", k=1, mode="lexical")
        assert hits[0].path == "gen/watched.py"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped watching" in err
