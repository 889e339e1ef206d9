"""What a live process offers: search, symbol, read, status and update over one warm, fresh index.

``LiveIndex`` owns the ``Index`` (its searcher keeps the model session, the FAISS segments and the
read connection between calls), the freshness loop in a background thread, and the live lock (one
live process per index). Every method returns plain JSON-ready data or raises a ``CodeIndexError``;
``server.py`` turns those into MCP results and tool errors. Searches are serialised (the searcher's
caches are not shared between threads; a search takes milliseconds), updates run beside them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from codeindex.errors import CodeIndexError, NotIndexedError, TreeGoneError
from codeindex.live.freshness import open_loop
from codeindex.store.lock import live_lock

log = logging.getLogger("codeindex.live")

SNIPPET_LINES = 40
SNIPPET_CHARS = 4000


def snippet(text: str) -> str:
    """A result's text, cut to what an agent can read at a glance (``read`` returns the full lines)."""
    lines = text.splitlines()
    out = "\n".join(lines[:SNIPPET_LINES])
    return out[:SNIPPET_CHARS] + (" …" if len(lines) > SNIPPET_LINES or len(out) > SNIPPET_CHARS else "")


class LiveIndex:
    """One index kept fresh by a file watcher and warm between calls, for ``codeindex serve``."""

    def __init__(self, root: str | os.PathLike[str], *, index_dir: str | os.PathLike[str] | None = None,
                 scheduler: str | None = None, embedder: str | None = None, watch: bool = True,
                 role: str = "serve") -> None:
        self.loop = open_loop(root, index_dir=index_dir, scheduler=scheduler, embedder=embedder, watch=watch)
        self.loop.on_quiet = self._warm
        self.index = self.loop.index
        self.role = role
        self._held = contextlib.ExitStack()
        self._thread: threading.Thread | None = None
        self._search_lock = threading.Lock()

    @property
    def root(self) -> str:
        return str(self.index.root)

    def start(self) -> None:
        """Take the live lock (``LiveConflictError`` if another server or watcher has it), start the loop."""
        self._held.enter_context(live_lock(self.index.index_dir, role=self.role))
        self._thread = threading.Thread(target=self._run, name="codeindex-freshness", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.loop.run()
        except BaseException:  # a dead loop must be visible in status, not a silent thread death
            log.exception("the freshness loop stopped")
            raise

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop the loop; True when it finished within ``timeout`` (an update may still be running)."""
        self.loop.stop()
        finished = True
        if self._thread is not None:
            self._thread.join(timeout)
            finished = not self._thread.is_alive()
        self.index.close()
        self._held.close()
        return finished

    def _warm(self) -> None:
        """In the loop's quiet time after an update: load the new state's search structures."""
        with self._search_lock, contextlib.suppress(CodeIndexError):
            self.index.warm()

    # ------------------------------------------------------------------ tools

    def search(self, query: str, *, k: int | None = None, mode: str | None = None, languages: Sequence[str] = (),
               paths: Sequence[str] = (), exclude_paths: Sequence[str] = (), kinds: Sequence[str] = (),
               symbol: str | None = None) -> dict[str, Any]:
        freshness = self._freshness()
        with self._search_lock, self._while_building():
            hits = self.index.search(query, k=k, mode=mode, languages=languages, paths=paths,
                                     exclude_paths=exclude_paths, kinds=kinds, symbol=symbol)
        results = [{"path": h.path, "start_line": h.start_line, "end_line": h.end_line, "symbol": h.symbol,
                    "kind": h.kind, "language": h.language, "score": h.score, "snippet": snippet(h.text)}
                   for h in hits]
        return {"results": results, **freshness}

    def symbol(self, name: str, *, k: int | None = None) -> dict[str, Any]:
        freshness = self._freshness()
        with self._search_lock, self._while_building():
            found = self.index.symbol(name, k=k)
        definitions = [{**d.as_dict(), "text": snippet(d.text)} for d in found]
        return {"definitions": definitions, **freshness}

    def read(self, path: str, *, start_line: int = 1, end_line: int | None = None, context: int = 0) -> dict[str, Any]:
        self._check_tree()
        with self._search_lock, self._while_building():
            return dict(self.index.read_lines(path, start_line, end_line, context=context).as_dict())

    def status(self) -> dict[str, Any]:
        """The index's status (when readable) and the live loop's; never an error of its own."""
        live = {"root": self.root, "role": self.role, "pid": os.getpid(), **self.loop.status()}
        try:
            with self._search_lock:
                index: dict[str, Any] | None = self.index.status()
            error = None
        except CodeIndexError as exc:
            index, error = None, str(exc)
        return {"live": live, "index": index, "index_error": error}

    def update(self, *, timeout: float = 600.0) -> dict[str, Any]:
        """A full stat-gated pass now (queued behind an update in progress); its run report."""
        self._check_tree()
        ticket = self.loop.request_full()
        if self.loop.wait_applied(ticket, timeout):
            return {"done": True, "report": self.loop.last_full_report}
        self._check_tree()
        if self.loop.last_error is not None and self.loop.busy is None:
            raise self.loop.last_error
        return {"done": False, "report": None,
                "note": f"the update is still running after {timeout:.0f}s; `status` shows its progress"}

    # ------------------------------------------------------------------ freshness

    def _check_tree(self) -> None:
        gone = self.loop.gone_since
        if gone is not None:
            raise TreeGoneError(f"the watched tree {self.root} was moved or removed (noticed {gone})")

    def _freshness(self) -> dict[str, Any]:
        """Wait (bounded) for changes already seen; what the answer's state is, in the result's words."""
        self._check_tree()
        fresh = self.loop.wait_fresh(self.index.config["live.wait_s"])
        out: dict[str, Any] = {"fresh": fresh}
        if not fresh:
            status = self.loop.status()
            if status["last_error"] and not status["updating"]:
                out["note"] = f"answered from the last committed state; updating failed: {status['last_error']}"
            else:
                out["note"] = (f"answered from the previous state: {status['pending_paths']} changed path(s) "
                               f"are still being indexed ({status['updating'] or 'queued'} update)")
        return out

    @contextlib.contextmanager
    def _while_building(self) -> Any:
        """A first build in progress is said as such, not as 'run codeindex rebuild'."""
        try:
            yield
        except NotIndexedError:
            if self.loop.busy == "full":
                phase = self.loop.status()["phase"]
                raise NotIndexedError(f"the first build of the index of {self.root} is still running ({phase})",
                                      hint="wait for it to finish: `status` shows its progress") from None
            raise
