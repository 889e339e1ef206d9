"""Settings, declared once (name, type, default, help) and layered:

defaults < user config (``~/.config/codeindex/config.toml``) < ``[tool.codeindex]`` in the indexed
root's ``pyproject.toml`` < ``.codeindex.toml`` at the root < ``CODEINDEX_SECTION__KEY`` env vars < flags.

``codeindex config`` shows each value and where it came from; the same table drives docs.

Every problem is collected, not only the first: a TOML syntax error or an unknown key names the file and
line, a bad value names the setting and where it came from (file:line, the env variable, or "flag").
``load_config`` raises one ``ConfigError`` listing them all; ``load_config(strict=False)`` (what
``codeindex config`` uses, since it is the diagnosis tool) returns what it could resolve plus the list.
Not fatal, but reported as warnings: an unknown ``CODEINDEX_*`` environment variable (the environment is
shared with every other program), an unreadable user config file (treated as absent), and a
``pyproject.toml`` that does not parse but has no ``[tool.codeindex]`` section (not ours to judge).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeindex.errors import UsageError


class ConfigError(UsageError):
    """One or more configuration problems; ``problems`` lists each as ``source: message``."""

    hint = "`codeindex config` shows every setting, its value and where it came from, and these problems"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        head = "invalid configuration" if len(problems) == 1 else f"{len(problems)} configuration problems"
        super().__init__(f"{head}: " + "; ".join(problems) if len(problems) == 1
                         else head + ":\n  " + "\n  ".join(problems))


def _at_least(minimum: int) -> Callable[[Any], str | None]:
    return lambda v: None if v >= minimum else f"must be at least {minimum}"


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def _device(value: str) -> str | None:
    if value in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", value):
        return None
    return "must be auto, cpu, cuda or cuda:N"


def _scheduler(value: str) -> str | None:
    if value in ("local", "sync") or re.fullmatch(r"(tcp|tls|inproc|ucx)://\S+", value):
        return None
    return "must be local, sync or a scheduler address such as tcp://host:8786"


def _ratio(value: float) -> str | None:
    return None if 0.0 < value <= 1.0 else "must be a fraction in (0, 1]"


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    check: Callable[[Any], str | None] | None = None
    """Returns why a (well-typed) value is invalid, or None when it is fine."""


SETTINGS: tuple[Setting, ...] = (
    Setting("embedder.backend", str, "onnx",
            "Embedder backend: onnx (ONNX Runtime, default), sentence-transformers (torch), hashing (no model)."),
    Setting("embedder.model", str, "",
            "sentence-transformers model directory or name; empty = the packaged all-MiniLM-L6-v2."),
    Setting("embedder.device", str, "auto", "auto, cpu or cuda. cuda without a usable GPU is an error.",
            _device),
    Setting("embedder.batch_tokens", int, 16384, "Padded-token budget of one embedding batch.", _at_least(1)),
    Setting("embedder.threads", int, 0, "Runtime intra-op threads per process; 0 = cores available.",
            _at_least(0)),
    Setting("embedder.fp16", bool, False, "Half precision on GPU (sentence-transformers backend)."),
    Setting("chunking.max_tokens", int, 256, "Token budget of one chunk (the model's max sequence).",
            _at_least(8)),
    Setting("discovery.max_file_bytes", int, 1_048_576,
            "Files larger than this are skipped (reason: too-large), at discovery and again when read.",
            _at_least(1)),
    Setting("engine.scheduler", str, "local",
            "local (a LocalCluster), sync (in-process, for debugging) or tcp://host:port (existing cluster).",
            _scheduler),
    Setting("engine.small_update_files", int, 50,
            "Dirty sets smaller than this run in-process without starting a cluster.", _at_least(0)),
    Setting("engine.workers", int, 0, "LocalCluster worker processes of one thread each; 0 = one two-thread worker "
            "per two cores, one embed task per worker at a time.", _at_least(0)),
    Setting("engine.parse_batch_files", int, 64, "Files per parse task (tasks are coarse: ~2 ms overhead each).",
            _at_least(1)),
    Setting("engine.max_in_flight", int, 4, "Batches in flight per stage; bounds memory on huge trees.",
            _at_least(1)),
    Setting("engine.checkpoint_s", float, 30.0,
            "A long rebuild or update commits its finished work (parsed files, embedded vectors) at least "
            "this often, in seconds; a kill or Ctrl-C loses at most that much. 0 = commit only at the end.",
            _at_least(0)),
    Setting("engine.checkpoint_chunks", int, 20_000,
            "...and whenever this many chunks were embedded since the last checkpoint (0 = no size trigger).",
            _at_least(0)),
    Setting("engine.lexical_checkpoint_s", float, 3.0,
            "A first build commits newly parsed files once they wait this long (its first at its first parse "
            "results; further apart as the run goes on: a tenth of its time so far) and when parsing ends, so "
            "lexical search covers them while it embeds.", _at_least(0)),
    Setting("store.segment_max_vectors", int, 65_536,
            "A segment is sealed when it holds this many vectors (bounds the writer's memory: ~100 MB at 384 dims).",
            _at_least(1)),
    Setting("store.compact_segments", int, 16, "Compact automatically when more small (delta) segments than this.",
            _at_least(1)),
    Setting("store.compact_dead_ratio", float, 0.3, "Compact automatically when this share of vectors is dead.",
            _ratio),
    Setting("store.ann_min_vectors", int, 200_000,
            "A bulk rebuild of at least this many vectors gets HNSW segments (built once, at the end); "
            "smaller indexes and update deltas stay exact (flat).", _at_least(1)),
    Setting("search.mode", str, "hybrid", "hybrid (reciprocal-rank fusion), vector or lexical.",
            _one_of("hybrid", "vector", "lexical")),
    Setting("search.k", int, 10, "Results returned by default.", _at_least(1)),
    Setting("live.quiet_ms", int, 20,
            "serve/watch: an update starts once the tree has been quiet this long after a change.", _at_least(1)),
    Setting("live.max_delay_ms", int, 2000,
            "serve/watch: ... or this long after the first change of a burst that keeps going.", _at_least(1)),
    Setting("live.max_paths", int, 5000,
            "serve/watch: a burst changing more paths than this is settled by one full stat-gated pass.",
            _at_least(1)),
    Setting("live.full_scan_s", float, 600.0,
            "serve/watch: seconds between full stat-gated passes that catch what a watcher missed (0 = never).",
            _at_least(0)),
    Setting("live.wait_s", float, 2.0,
            "serve: how long a search waits for an update of changes already seen before answering from "
            "the previous state (and saying so).", _at_least(0)),
    Setting("search.group", str, "definition",
            "definition (at most one result per definition, other pieces' lines attached), file, or none.",
            _one_of("definition", "file", "none")),
    Setting("search.reranker", str, "", "A reranker plugin to reorder results by; empty = none (the default)."),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


ENV_PREFIX = "CODEINDEX_"

SWITCHES: tuple[tuple[str, str], ...] = (
    ("CODEINDEX_DISABLE_PLUGIN_AUTOLOAD=1", "load only the built-in plugins"),
    ("CODEINDEX_BLOCK_PLUGINS=a,b", "never load the named plugins (entry-point names)"),
    ("CODEINDEX_HASH_FORK=0", "never fork the hashing child of a first full hash (Linux); hash in-process"),
)
"""Environment switches read outside the layered configuration (documented in docs/reference/config.md)."""

TEST_SWITCHES = frozenset({"CODEINDEX_CRASH_AT", "CODEINDEX_PAUSE_AT", "CODEINDEX_PAUSE_MARKER",
                           "CODEINDEX_TEST_CORPUS"})
"""Variables the test suite uses (crash and pause points, the corpus): known, so never warned about."""


def env_name(setting_name: str) -> str:
    """``search.k`` -> ``CODEINDEX_SEARCH__K``."""
    return ENV_PREFIX + setting_name.upper().replace(".", "__")


def _known_variables() -> frozenset[str]:
    return frozenset(name.split("=", 1)[0] for name, _ in SWITCHES) | TEST_SWITCHES


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, BY_NAME, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _coerce(setting: Setting, value: Any) -> Any:
    """``value`` as the setting's type and checked, or ``ValueError`` saying what is wrong with it."""
    typed = _as_type(setting, value)
    if setting.check is not None:
        problem = setting.check(typed)
        if problem:
            raise ValueError(f"{problem}, got {value!r}")
    return typed


def _as_type(setting: Setting, value: Any) -> Any:
    if isinstance(value, setting.type) and not (setting.type is int and isinstance(value, bool)):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if setting.type is bool:
                if text.lower() in ("1", "true", "yes", "on"):
                    return True
                if text.lower() in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError(text)
            return setting.type(text)
        except ValueError:
            pass
    if setting.type is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"expected {setting.type.__name__}, got {value!r}")


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}".replace("-", "_")
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


_HEADER = re.compile(r"^\[\s*([^\[\]]+?)\s*\]")
_KEY = re.compile(r"^((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")


def _dotted(text: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in text.split(".")).replace("-", "_")


def key_lines(text: str, table: str = "") -> dict[str, int]:
    """Line numbers of the settings a TOML text sets: dotted name (below ``table``) -> first line.

    Covers the TOML people write for settings (``[section]`` headers, ``key = value``, dotted keys);
    a name it cannot place is reported without a line.
    """
    prefix = table + "." if table else ""
    current = ""
    out: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = _HEADER.match(stripped)
        if header and not stripped.startswith("[["):
            current = _dotted(header.group(1))
            continue
        key = _KEY.match(stripped)
        if key:
            full = f"{current}.{_dotted(key.group(1))}" if current else _dotted(key.group(1))
            if full.startswith(prefix):
                out.setdefault(full[len(prefix):], number)
    return out


@dataclass(slots=True)
class _Layer:
    """One configuration file's settings, with what is needed to name the line of each."""

    path: Path
    label: str
    table: dict[str, Any]
    lines: dict[str, int]

    def where(self, name: str) -> str:
        line = self.lines.get(name)
        return f"{self.path}:{line}" if line else self.label


def _read_layer(path: Path, *, section: str = "", optional_unreadable: bool = False,
                problems: list[str], warnings: list[str]) -> _Layer | None:
    """Read one TOML file; ``section`` (e.g. ``tool.codeindex``) selects a table inside it.

    A missing file is no layer. For a file with a ``section`` (pyproject.toml), a parse error is ours to
    report only when the file mentions that section; otherwise it is a warning.
    """
    label = f"{path} [{section}]" if section else str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if optional_unreadable:
            warnings.append(f"cannot read {path} ({reason}); going on without it")
        else:
            problems.append(f"{path}: cannot read: {reason}")
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _decode_error_line(exc)
        where = f"{path}:{line}" if line else str(path)
        if section and f"[{section}" not in text and f"{section}." not in text:
            warnings.append(f"{where}: not valid TOML ({_decode_error_text(exc)}); it has no [{section}] "
                            "section, so codeindex ignores it")
        else:
            problems.append(f"{where}: not valid TOML: {_decode_error_text(exc)}")
        return None
    table: Any = data
    for part in section.split(".") if section else ():
        table = table.get(part, {}) if isinstance(table, dict) else {}
    if not isinstance(table, dict):
        problems.append(f"{label}: expected a table of settings, got {type(table).__name__}")
        return None
    return _Layer(path, label, table, key_lines(text, section))


def _decode_error_line(exc: tomllib.TOMLDecodeError) -> int | None:
    line = getattr(exc, "lineno", None)  # Python 3.14+; older versions say it in the message
    if line:
        return int(line)
    found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
    return int(found.group(1)) if found else None


def _decode_error_text(exc: tomllib.TOMLDecodeError) -> str:
    return re.sub(r"\s*\(at line \d+, column \d+\)", "", str(getattr(exc, "msg", "") or exc))


def user_config_path() -> Path:
    from codeindex.userdirs import config_file

    return config_file()


class Config:
    """Resolved settings with the source of each value, plus what was wrong or odd while resolving them.

    ``config["search.k"]`` reads a value; ``config.as_dict()`` gives every value by name.
    """

    def __init__(self, values: dict[str, Any], sources: dict[str, str], *, errors: list[str] | None = None,
                 warnings: list[str] | None = None) -> None:
        self._values = values
        self._sources = sources
        self.errors: list[str] = list(errors or [])
        """Problems found (``load_config(strict=False)`` only: a strict load raises them)."""
        self.warnings: list[str] = list(warnings or [])
        """Not fatal, but worth telling the user (an unknown env variable, an unreadable user config)."""

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def source(self, name: str) -> str:
        return self._sources[name]

    def items(self) -> list[tuple[Setting, Any, str]]:
        return [(s, self._values[s.name], self._sources[s.name]) for s in SETTINGS]

    def as_dict(self) -> dict[str, Any]:
        """Every setting's value by name."""
        return dict(self._values)

    def with_overrides(self, overrides: Mapping[str, Any], source: str = "flag") -> Config:
        """A copy with ``overrides`` (setting name -> value; None means "not given") applied on top."""
        values, sources = dict(self._values), dict(self._sources)
        problems: list[str] = []
        for name, value in overrides.items():
            if value is None:
                continue
            setting = BY_NAME.get(name)
            if setting is None:
                problems.append(f"{source}: unknown setting {name!r}{_suggest(name)}")
                continue
            try:
                values[name] = _coerce(setting, value)
            except ValueError as exc:
                problems.append(f"setting {name} from {source}: {exc}")
                continue
            sources[name] = source
        if problems:
            raise ConfigError(problems)
        return Config(values, sources, errors=self.errors, warnings=self.warnings)


def load_config(root: Path | None = None, overrides: Mapping[str, Any] | None = None,
                env: Mapping[str, str] | None = None, *, strict: bool = True) -> Config:
    """Resolve every setting for the tree at ``root``: defaults < user < pyproject < .codeindex.toml < env
    < ``overrides``.

    ``strict`` (the default) raises one ``ConfigError`` listing every problem; ``strict=False`` returns
    the settings it could resolve (a bad value keeps the layer below it) with the problems in ``errors``.
    """
    env = os.environ if env is None else env
    values = {s.name: s.default for s in SETTINGS}
    sources = {s.name: "default" for s in SETTINGS}
    problems: list[str] = []
    warnings: list[str] = []
    layers = [_read_layer(user_config_path(), optional_unreadable=True, problems=problems, warnings=warnings)]
    if root is not None:
        layers.append(_read_layer(root / "pyproject.toml", section="tool.codeindex", problems=problems,
                                  warnings=warnings))
        layers.append(_read_layer(root / ".codeindex.toml", problems=problems, warnings=warnings))
    for layer in layers:
        if layer is None:
            continue
        for name, value in _flatten(layer.table).items():
            setting = BY_NAME.get(name)
            if setting is None:
                problems.append(f"{layer.where(name)}: unknown setting {name!r}{_suggest(name)}")
                continue
            try:
                values[name] = _coerce(setting, value)
            except ValueError as exc:
                problems.append(f"{layer.where(name)}: setting {name}: {exc}")
                continue
            sources[name] = layer.label
    known = _known_variables()
    for key, value in sorted(env.items()):
        if not key.startswith(ENV_PREFIX) or key in known:
            continue
        name = key[len(ENV_PREFIX):].lower().replace("__", ".")
        setting = BY_NAME.get(name) if "__" in key else None
        if setting is None:
            warnings.append(f"unknown environment variable {key} ignored"
                            f"{_suggest(name) if '__' in key else ''}")
            continue
        try:
            values[name] = _coerce(setting, value)
        except ValueError as exc:
            problems.append(f"env {key}: setting {name}: {exc}")
            continue
        sources[name] = f"env {key}"
    config = Config(values, sources, warnings=warnings)
    try:
        config = config.with_overrides(overrides or {})
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems and strict:
        raise ConfigError(problems)
    config.errors = problems
    return config
