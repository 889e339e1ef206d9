"""Search arguments checked before a query runs: a filter that can match nothing is a mistake to report.

``--lang pyhton`` or ``--kind fucntion`` used to return "no results" with exit 0, which reads as "there
is no such code". Now a language that no installed parser knows and that the index does not hold, or
a kind no chunk of the index has, is a ``UsageError`` that lists the valid values. A known language
that this index simply has no files of still returns no results: that answer is true.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from codeindex.errors import UsageError

if TYPE_CHECKING:
    import duckdb

    from codeindex.store.reader import Stamp


def as_list(name: str, value: Any) -> list[str]:
    """A sequence-of-strings argument as a list; a bare string is refused (it would be read letter by letter)."""
    if value is None:
        return []
    if isinstance(value, str | bytes):
        raise UsageError(f"{name} must be a list of strings, not a single string: pass {[value]!r}",
                         hint=f"e.g. search('...', {name}={[value]!r})")
    try:
        items = list(value)
    except TypeError:
        raise UsageError(f"{name} must be a list of strings, got {type(value).__name__}") from None
    bad = [item for item in items if not isinstance(item, str)]
    if bad:
        raise UsageError(f"{name} must be a list of strings; {bad[0]!r} is a {type(bad[0]).__name__}")
    return items


def check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        raise UsageError(f"k must be an integer, got {k!r}")
    if k < 1:
        raise UsageError(f"k must be at least 1, got {k}", hint="pass -k 1 or more")
    return k


def _unknown(kind: str, given: Sequence[str], valid: Sequence[str], *, also: str = "") -> UsageError:
    first = given[0]
    close = difflib.get_close_matches(first, valid, n=1, cutoff=0.6)
    guess = f" (did you mean {close[0]}?)" if close else ""
    names = ", ".join(repr(g) for g in given)
    listing = ", ".join(sorted(valid)) or "none"
    return UsageError(f"unknown {kind} {names}{guess}; this index has: {listing}", hint=also or None)


class FilterVocabulary:
    """The languages and chunk kinds of one committed state, read only when a filter needs them."""

    def __init__(self) -> None:
        self._stamp: Stamp | None = None
        self._languages: list[str] | None = None
        self._kinds: list[str] | None = None

    def _at(self, stamp: Stamp) -> None:
        if stamp != self._stamp:
            self._stamp, self._languages, self._kinds = stamp, None, None

    def check(self, con: duckdb.DuckDBPyConnection, stamp: Stamp, languages: Sequence[str],
              kinds: Sequence[str]) -> None:
        """Raise ``UsageError`` for a language or kind that can match nothing (see the module doc)."""
        self._at(stamp)
        if languages:
            if self._languages is None:
                self._languages = [r[0] for r in con.execute(
                    "SELECT DISTINCT language FROM files WHERE skip_reason IS NULL AND language IS NOT NULL"
                ).fetchall()]
            missing = [lang for lang in languages if lang not in self._languages]
            if missing:
                known = _parser_languages()
                unknown = [lang for lang in missing if lang not in known]
                if unknown:
                    raise _unknown("language", unknown, self._languages,
                                   also="`codeindex plugins` lists every language the installed parsers know")
        if kinds:
            if self._kinds is None:
                self._kinds = [r[0] for r in con.execute(
                    "SELECT DISTINCT kind FROM chunks WHERE kind IS NOT NULL").fetchall()]
            unknown = [kind for kind in kinds if kind not in self._kinds]
            if unknown and self._kinds:
                raise _unknown("kind", unknown, self._kinds)


def _parser_languages() -> set[str]:
    from codeindex.plugins import get_plugin_manager

    return {spec.name for parser in get_plugin_manager().parsers() for spec in parser.languages()}
