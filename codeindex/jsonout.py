"""The JSON the CLI prints: one envelope for every ``--json`` output, errors included.

Every object carries ``schema`` (this module's ``SCHEMA``, bumped on any incompatible change of any
command's output; additions do not bump it) and ``command``. Timestamps are ISO 8601 in UTC
(``2025-01-31T09:30:00Z``). docs/reference/json.md shows an example of each command's output and
``tests/test_json_docs.py`` checks the examples against what the commands print.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

SCHEMA = 1


def iso_utc(value: datetime | float | None) -> str | None:
    """A timestamp as ISO 8601 UTC to the second. A naive ``datetime`` is taken as UTC (how runs store it);
    a number is a Unix time."""
    if value is None:
        return None
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value, UTC)
    elif value.tzinfo is None:
        moment = value.replace(tzinfo=UTC)
    else:
        moment = value.astimezone(UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def envelope(command: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` under the common header: ``{"schema": 1, "command": "status", ...data}``."""
    return {"schema": SCHEMA, "command": command, **data}


def error_object(exc: BaseException, exit_code: int, hint: str = "") -> dict[str, Any]:
    """What ``--json`` prints on stderr for an error: the message, the hint and the exit code."""
    return envelope("error", {"error": {"type": type(exc).__name__, "message": str(exc), "hint": hint or None,
                                        "exit_code": int(exit_code)}})


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, os.PathLike):  # pathlib stays out of start-up: `--help` never imports it
        return os.fspath(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    return str(value)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=_default)
