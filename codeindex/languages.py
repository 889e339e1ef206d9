"""Which parser handles which file: an extension/file-name map built from the parser plugins.

Later-registered parsers win on a shared extension, so a third-party package can replace a built-in
language. Files with no known extension are indexed as ``text`` (line windows) when a parser claims
the ``text`` language; discovery filters binaries by extension and the engine sniffs content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from codeindex.hookspecs import Parser
from codeindex.secrets import REDACTION_RULES_VERSION

FALLBACK_LANGUAGE = "text"


@dataclass(slots=True)
class LanguageMap:
    by_extension: dict[str, str] = field(default_factory=dict)
    by_filename: dict[str, str] = field(default_factory=dict)
    parser_of_language: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_parsers(cls, parsers: Sequence[Parser]) -> LanguageMap:
        lm = cls()
        for parser in parsers:
            for spec in parser.languages():
                lm.parser_of_language[spec.name] = parser.name
                for ext in spec.extensions:
                    lm.by_extension[ext.lower()] = spec.name
                for name in spec.filenames:
                    lm.by_filename[name] = spec.name
        return lm

    def language_of(self, relpath: str) -> str | None:
        """The language for a path, ``text`` for unknown extensions, None if no parser can take it."""
        name = relpath.rpartition("/")[2]  # POSIX relative paths; cheaper than posixpath.basename
        if name in self.by_filename:
            return self.by_filename[name]
        lower = name.lower()
        dot = lower.find(".", 1)
        while dot != -1:  # longest suffix first: ".d.ts" before ".ts"
            lang = self.by_extension.get(lower[dot:])
            if lang is not None:
                return lang
            dot = lower.find(".", dot + 1)
        return FALLBACK_LANGUAGE if FALLBACK_LANGUAGE in self.parser_of_language else None

    def parser_for(self, language: str) -> str | None:
        return self.parser_of_language.get(language)


def parser_identity(parser: Parser, language: str) -> str:
    """``name@version#confighash+rN``: stored per file, so a parser upgrade re-chunks only its languages
    (and a change of the secret-redaction rules, ``rN``, re-chunks every file: they run before parsing)."""
    return f"{parser.name}@{parser.version}#{parser.config_hash(language)}+r{REDACTION_RULES_VERSION}"
