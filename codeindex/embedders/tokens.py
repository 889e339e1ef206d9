"""Token counting as the model's tokenizer sees it: the tokenizer, the fast WordPiece counter, and the
picklable ``TokenCounter`` that travels to parse tasks on Dask workers inside a ``ChunkBudget``."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codeindex.embedders.models import resolve_model_path
from codeindex.errors import EmbedderError
from codeindex.hookspecs import EmbedderSettings

if TYPE_CHECKING:
    from codeindex.embedders.fast_count import FastWordPieceCounter


_tokenizer_lock = threading.Lock()
_tokenizers: dict[tuple[str, int | None], Any] = {}


def load_tokenizer(path: Path, truncate_at: int | None) -> Any:
    """A ``tokenizers.Tokenizer`` from ``tokenizer.json``, shared per process.

    The file's own truncation (128 for MiniLM) is replaced: ``truncate_at`` is the model's
    ``max_seq_length`` for embedding, ``None`` for counting (counts are "before truncation").
    Padding is per batch, to the longest row. The returned object must not be reconfigured.
    """
    key = (str(path), truncate_at)
    with _tokenizer_lock:
        tok = _tokenizers.get(key)
        if tok is None:
            from tokenizers import Tokenizer

            file = path / "tokenizer.json"
            if not file.exists():
                raise EmbedderError(f"no tokenizer.json in {path}",
                                    hint="use the sentence-transformers backend for this model")
            tok = Tokenizer.from_file(str(file))
            if truncate_at is None:
                tok.no_truncation()
                tok.no_padding()
            else:
                tok.enable_truncation(max_length=truncate_at)
                pad_id = tok.padding["pad_id"] if tok.padding else 0
                pad_token = tok.padding["pad_token"] if tok.padding else "[PAD]"
                tok.enable_padding(pad_id=pad_id, pad_token=pad_token)
            _tokenizers[key] = tok
        return tok


_fast_lock = threading.Lock()
_fast_counters: dict[str, FastWordPieceCounter | None] = {}


def hf_count(path: Path, texts: Sequence[str]) -> list[int]:
    """Token counts by the model's own tokenizer (the reference), before truncation."""
    tok = load_tokenizer(path, None)
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)  # same ids, no offsets: faster
    return [len(enc.ids) for enc in encode(list(texts))]


def fast_counter(path: Path) -> FastWordPieceCounter | None:
    """The process-wide ``FastWordPieceCounter`` for the model at ``path``, or ``None`` if its
    tokenizer is not a BERT WordPiece configuration (then counts come from ``hf_count``)."""
    key = str(path)
    with _fast_lock:
        if key in _fast_counters:
            return _fast_counters[key]
    from codeindex.embedders.fast_count import FastWordPieceCounter

    counter = FastWordPieceCounter.from_file(path / "tokenizer.json", lambda texts: hf_count(path, texts))
    with _fast_lock:
        return _fast_counters.setdefault(key, counter)


class TokenCounter:
    """Counts tokens as the model's tokenizer sees them, before truncation.

    Exactly ``len(tokenizer.encode(text).ids)``, computed by ``FastWordPieceCounter`` when the model's
    tokenizer is BERT WordPiece (MiniLM and most sentence-transformers models) and by the tokenizer
    itself otherwise. Picklable by path alone (both are loaded lazily in the process that counts), so
    it can travel inside a ``ChunkBudget`` to Dask workers.
    """

    def __init__(self, model_path: Path) -> None:
        self.model_path = Path(model_path)

    def __call__(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        fast = fast_counter(self.model_path)
        if fast is not None:
            return fast(texts)
        return hf_count(self.model_path, texts)

    def __reduce__(self) -> tuple[type[TokenCounter], tuple[Path]]:
        return (TokenCounter, (self.model_path,))

    def __repr__(self) -> str:
        return f"TokenCounter({str(self.model_path)!r})"


def model_token_counter(settings: EmbedderSettings, backend: str) -> TokenCounter:
    """The ``token_counter`` hook of model-backed backends."""
    return TokenCounter(resolve_model_path(settings, backend))
