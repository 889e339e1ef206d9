"""Texts waiting for their vectors, and the windows they are embedded in (a pure data structure).

A text is queued when the pipeline stages the first chunk that uses it. Until a checkpoint commits that
chunk, the text is held here (it exists nowhere else); once committed, only its key, vector id, chunk id
and token count are kept, and its text is read back from the database when its window is formed. So a
first build parses the whole tree ahead of the embedding (its files lexically searchable long before
their vectors exist) while memory holds the texts of one window and of what the last few seconds
parsed: ~36 bytes a waiting text, not the text itself (a 100k-file tree's millions of chunks wait in
tens of MB, not GB).

``take`` hands out the oldest waiting texts, up to a window's worth of tokens: first in, first embedded,
so the windows (and the batches planned within each, ``embedders/batching.py``) depend only on the
order texts were queued, never on how far parsing got meanwhile. The crash tests rely on that.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

TOKEN_CAP = 512
"""Tokens a text counts for at most, in windows and memory bounds (the model truncates longer ones)."""


@dataclass(slots=True)
class PendingText:
    """A text waiting for its vector: its key, the vector id its chunks use, what to embed.

    ``text`` is None once its chunk is committed: it is read back from chunk row ``chunk_id``.
    """

    key: str
    text: str | None
    n_tokens: int
    vec_id: int = -1
    chunk_id: int = -1


def capped(n_tokens: int) -> int:
    return min(n_tokens, TOKEN_CAP)


class WaitingTexts:
    """The FIFO of texts waiting for their vectors, in parallel arrays (no object per text).

    ``tokens``: capped tokens of every waiting text; ``held_tokens``: of those whose text is in memory.
    Texts are held only at the tail (queued since the last ``drop_texts``), so dropping is O(new).
    """

    def __init__(self) -> None:
        self._keys: list[str] = []
        self._texts: list[str | None] = []
        self._vec_ids = array("q")
        self._chunk_ids = array("q")
        self._n_tokens = array("i")
        self._head = 0  # entries before it were taken
        self._held_from = 0  # entries before it hold no text
        self.tokens = 0
        self.held_tokens = 0

    def __len__(self) -> int:
        return len(self._keys) - self._head

    def add(self, pending: PendingText) -> None:
        self._keys.append(pending.key)
        self._texts.append(pending.text)
        self._vec_ids.append(pending.vec_id)
        self._chunk_ids.append(pending.chunk_id)
        self._n_tokens.append(pending.n_tokens)
        self.tokens += capped(pending.n_tokens)
        if pending.text is not None:
            self.held_tokens += capped(pending.n_tokens)

    def drop_texts(self) -> None:
        """Every waiting text's chunk is committed now: keep only what reads it back (key, ids, tokens)."""
        for i in range(max(self._head, self._held_from), len(self._texts)):
            self._texts[i] = None
        self._held_from = len(self._texts)
        self.held_tokens = 0

    def texts_held(self) -> int:
        """How many waiting texts are held in memory (the rest are read back when their window forms)."""
        return sum(1 for i in range(max(self._head, self._held_from), len(self._texts))
                   if self._texts[i] is not None)

    def take(self, window_tokens: int) -> list[PendingText]:
        """The oldest waiting texts, until they reach ``window_tokens`` capped tokens (at least one)."""
        start = end = self._head
        total = 0
        while end < len(self._keys) and (end == start or total < window_tokens):
            total += capped(self._n_tokens[end])
            end += 1
        out = [PendingText(self._keys[i], self._texts[i], self._n_tokens[i], self._vec_ids[i], self._chunk_ids[i])
               for i in range(start, end)]
        held = sum(capped(p.n_tokens) for p in out if p.text is not None)
        self._head = end
        self.tokens -= total
        self.held_tokens -= held
        if self._head >= 4096 and 2 * self._head >= len(self._keys):  # amortised: drop what was taken
            for column in (self._keys, self._texts, self._vec_ids, self._chunk_ids, self._n_tokens):
                del column[:self._head]
            self._held_from = max(0, self._held_from - self._head)
            self._head = 0
        return out
