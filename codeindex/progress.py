"""Progress events: the library reports, the CLI renders. The library never prints.

``RunProgress`` is the one figure a whole run is measured by: tokens to embed. It is planned from the
start (the bytes of the files to parse times tokens per byte: recorded by earlier runs, then measured
on what this run has parsed) and exact once parsing ends; the ETA divides what remains by the rate
this run measures. Pure arithmetic on counters, so it is tested without a pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ProgressEvent:
    """``stage`` is one of discover, hash, plan, repair, parse, embed, run, checkpoint, commit, compact, done,
    warning, or ``lock``: waiting for another writer, ``detail`` holding its ``pid``, ``host`` and ``since``
    (Unix time).

    ``run`` is the whole run in tokens to embed (``detail``: ``eta_s``, ``tokens_per_s``, ``exact``);
    ``embed`` counts distinct texts to embed (``detail`` says how many chunks share a text or reuse a
    stored vector, which is why it counts fewer than ``parse``'s chunks); ``checkpoint`` says what a
    checkpoint committed.
    """

    stage: str
    done: int = 0
    total: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


ProgressCallback = Callable[[ProgressEvent], None]


def no_progress(event: ProgressEvent) -> None:
    """The default callback: ignore events."""


DEFAULT_TOKENS_PER_BYTE = 0.2
"""Tokens to embed per byte of source before anything was measured (the small and medium corpora
give 0.19-0.22 with MiniLM's WordPiece counts, after de-duplication)."""
DEFAULT_TEXTS_PER_BYTE = 0.002
PRIOR_BYTES = 256 * 1024
"""How much parsed source the prior counts as: the first parse batch refines it, a few make it moot."""


@dataclass(slots=True)
class RunProgress:
    """Planned and done work of one run, in tokens (and distinct texts) to embed, and the ETA.

    ``bytes_total`` are the bytes of the files the run parses; ``known_tokens``/``known_texts`` the work
    known exactly from the start (vectors a killed run left to embed, moved or re-embedded chunks).
    """

    bytes_total: int
    tokens_per_byte: float = DEFAULT_TOKENS_PER_BYTE
    texts_per_byte: float = DEFAULT_TEXTS_PER_BYTE
    prior_tokens_per_s: float | None = None
    known_tokens: int = 0
    known_texts: int = 0
    bytes_parsed: int = 0
    parsed_tokens: int = 0
    parsed_texts: int = 0
    tokens_done: int = 0
    texts_done: int = 0
    parse_finished: bool = False
    _first_done_at: float | None = None
    _tokens_at_first: int = 0

    def add_known(self, tokens: int, texts: int) -> None:
        self.known_tokens += tokens
        self.known_texts += texts

    def parsed(self, n_bytes: int, new_tokens: int, new_texts: int) -> None:
        """A parse batch of ``n_bytes`` found ``new_texts`` texts (``new_tokens``) that need a vector."""
        self.bytes_parsed += n_bytes
        self.parsed_tokens += new_tokens
        self.parsed_texts += new_texts

    def embedded(self, tokens: int, texts: int, now: float) -> None:
        if self._first_done_at is None:
            self._first_done_at = now  # the first batch also paid for loading the model: the rate starts here
            self._tokens_at_first = self.tokens_done + tokens
        self.tokens_done += tokens
        self.texts_done += texts

    def _remaining_bytes(self) -> int:
        return 0 if self.parse_finished else max(0, self.bytes_total - self.bytes_parsed)

    def _per_byte(self, measured: int, prior: float) -> float:
        return (measured + prior * PRIOR_BYTES) / (self.bytes_parsed + PRIOR_BYTES)

    @property
    def planned_tokens(self) -> int:
        rest = self._remaining_bytes() * self._per_byte(self.parsed_tokens, self.tokens_per_byte)
        return max(self.tokens_done, self.known_tokens + self.parsed_tokens + round(rest))

    @property
    def planned_texts(self) -> int:
        rest = self._remaining_bytes() * self._per_byte(self.parsed_texts, self.texts_per_byte)
        return max(self.texts_done, self.known_texts + self.parsed_texts + round(rest))

    def tokens_per_s(self, now: float) -> float | None:
        """Tokens embedded per second of this run, from the first finished batch on; else the recorded rate."""
        if self._first_done_at is not None and now - self._first_done_at > 0.5:
            done = self.tokens_done - self._tokens_at_first
            if done > 0:
                return done / (now - self._first_done_at)
        return self.prior_tokens_per_s

    def eta_s(self, now: float) -> float | None:
        rate = self.tokens_per_s(now)
        if not rate:
            return None
        return max(0, self.planned_tokens - self.tokens_done) / rate

    def event(self, now: float, phase: str) -> ProgressEvent:
        rate = self.tokens_per_s(now)
        return ProgressEvent("run", done=self.tokens_done, total=self.planned_tokens,
                             detail={"eta_s": self.eta_s(now), "tokens_per_s": rate, "exact": self.parse_finished,
                                     "phase": phase})
