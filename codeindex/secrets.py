"""Secrets never enter the index: credential files are not indexed, secret values are masked.

Two layers, both on by default:

* **Credential files** (``is_secret_file``): files whose whole purpose is to hold credentials are
  skipped by discovery (reason ``secret-file``): ``.env`` and ``.env.*`` (but not the templates
  ``.env.example``/``.sample``/``.template``/``.dist``), ``*.env``, private keys and key stores
  (``id_rsa``, ``id_ed25519``..., ``*.pem``, ``*.key``, ``*.p12``, ``*.pfx``, ``*.jks``,
  ``*.keystore``, ``*.ppk``), ``.netrc``, ``.npmrc``, ``.pypirc``, ``.git-credentials``, ``.pgpass``,
  ``.htpasswd``, Terraform state, ``.aws/credentials``, ``.docker/config.json``, ``.kube/config``,
  and the ``.ssh/`` and ``.gnupg/`` folders. A negation in an ignore file re-includes one
  (``!.env.test`` in ``.codeindexignore``), exactly as it overrides the other default excludes.
* **Secret values** (``redact``): every file's bytes are scanned before they are parsed, so no
  chunk, embedding, context header, symbol or lexical posting ever sees a secret. A found secret is
  overwritten byte for byte with ``*`` (its recognisable prefix kept, e.g. ``ghp_****``): byte
  offsets and line numbers of every chunk stay true to the file. Shapes: private-key blocks, AWS
  access key ids (and a 40-character secret key on the same line), GitHub, Slack, Google API and
  Stripe live tokens, Slack webhooks, and high-entropy literals assigned to names like
  ``*_SECRET``, ``*_TOKEN``, ``PASSWORD``,
  ``API_KEY`` (quoted literals anywhere; unquoted values only as a whole line's value, as in
  ``.env``, INI or YAML files, and only with digits in them: in code an unquoted value is a name).
  What was found (kind, line, the variable's name; never the value) is returned so the index can
  say what it redacted.

Cost: about a dozen scans of the file at substring-search speed (each pattern starts with a literal,
which ``re`` finds as fast as ``bytes.find``): 3.5-5.3 s for the 185 MB of the large corpus on one
shared core, a few percent of its parse stage (132 s busy in a hashing rebuild). It runs in the parse
tasks, on the workers. Every quantifier is bounded, so no file can make it slow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

SECRET_REASON = "secret-file"
"""The discovery skip reason of a credential file or folder."""

REDACTION_RULES_VERSION = "1"
"""Part of every parser identity (``languages.parser_identity``): changing the rules re-chunks files."""

SECRET_FILE_NAMES = frozenset({
    ".env", ".netrc", "_netrc", ".npmrc", ".pypirc", ".git-credentials", ".pgpass", ".htpasswd",
    "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk",
})
SECRET_EXTENSIONS = frozenset({"pem", "key", "p12", "pfx", "jks", "keystore", "ppk", "env", "tfstate"})
ENV_TEMPLATES = frozenset({".env.example", ".env.sample", ".env.template", ".env.dist"})
SECRET_FILES_IN_DIRS = frozenset({(".aws", "credentials"), (".docker", "config.json"), (".kube", "config")})
SECRET_DIRS = frozenset({".ssh", ".gnupg"})


def is_secret_file(name: str, ext: str, parent: str) -> bool:
    """True for a credential file. ``ext``: the lower-cased extension ("" for none); ``parent``: the
    name of the folder holding it ("" at the root)."""
    if name in SECRET_FILE_NAMES or ext in SECRET_EXTENSIONS:
        return True
    if name.startswith(".env.") and name not in ENV_TEMPLATES:
        return True
    return (parent, name) in SECRET_FILES_IN_DIRS or name.endswith(".tfstate.backup")


def is_secret_dir(name: str) -> bool:
    return name in SECRET_DIRS


@dataclass(frozen=True, slots=True)
class Redaction:
    """One masked secret: where it was and what it looked like, never the secret itself."""

    line: int
    kind: str
    name: str = ""
    """The variable or key the secret was assigned to (assignments only)."""


MASK = ord("*")
MAX_KEY_BLOCK = 64 * 1024


@dataclass(frozen=True, slots=True)
class _Shape:
    """A token with a recognisable literal start. ``regex`` begins with that literal, so ``re`` finds
    candidates at the speed of a substring search; the word boundaries ``before``/``after`` (bytes
    that must not touch the match) are checked here, as a lookbehind would cost ``re`` that speed."""

    kind: str
    regex: re.Pattern[bytes]
    keep: int  # leading bytes left visible (the non-secret prefix)
    before: frozenset[int] = frozenset()
    after: frozenset[int] = frozenset()


_UPPER_DIGITS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_SHAPES = (
    _Shape("aws-access-key", re.compile(rb"(?:AK|AS|AB)IA[0-9A-Z]{16}|ACCA[0-9A-Z]{16}"), 4,
           _UPPER_DIGITS, _UPPER_DIGITS),
    _Shape("github-token", re.compile(rb"gh(?:[pousr]_[A-Za-z0-9]{36,255}|ithub_pat_[A-Za-z0-9_]{22,255})"), 4,
           _WORD, _WORD),
    _Shape("slack-token", re.compile(rb"xox[abposr]-[A-Za-z0-9-]{10,250}"), 5, _WORD),
    _Shape("slack-webhook", re.compile(rb"hooks\.slack\.com/services/[A-Za-z0-9_/]{8,200}"), 27),
    _Shape("google-api-key", re.compile(rb"AIza[0-9A-Za-z_\-]{35}"), 4, _WORD, _WORD | {ord("-")}),
    _Shape("stripe-key", re.compile(rb"k_live_[0-9A-Za-z]{16,247}"), 7),  # sk_live_..., rk_live_...
)

_AWS_SECRET = re.compile(rb"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_KEY_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----")
_BASE64_LINE = re.compile(rb"[ \t]*(?:[A-Za-z0-9+/=]{16,}|[A-Za-z-]+: [^\r\n]{0,200}|)[ \t]*\r?\n")

# Names that say "secret": their words are found on the lower-cased bytes, one substring search each;
# each hit is then checked where it stands: an assignment follows, the name holds a word, the value
# looks like a secret.
_NAME_NEEDLES = (b"secret", b"token", b"passw", b"pwd", b"credential", b"key")
_NAME_WORD = re.compile(rb"secret|token|passw(?:or)?d|pwd|credential|api[_-]?key|private[_-]?key|access[_-]?key")
_NAME_REST = re.compile(rb"[a-z0-9_.-]{0,64}")
_NAME_START = re.compile(rb"[a-z0-9_.-]{1,128}$")
# After the name: an optional closing quote (JSON/YAML keys), an optional type hint, an assignment
# operator, an optional opening quote, then the value (no whitespace or quotes; bounded).
_ASSIGNED = re.compile(rb"""["']?[ \t]{0,8}"""
                       rb"""(?::[ \t]{0,8}[A-Za-z_][\w.]{0,30}(?:\[[\w., ]{0,40}\])?[ \t]{0,8}(?==))?"""
                       rb"""(?::=|=>|=|:)[ \t]{0,8}(["'`]?)([^\s"'`,;]{8,200})""")
_DOTTED_NAME = re.compile(rb"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_ENDS_LINE = re.compile(rb"[ \t]*(?:#[^\r\n]{0,200})?(?:\r?\n|$)")
# Name endings that say the value is *about* a secret, not the secret: SECRET_KEY_FILE, TOKEN_URL...
_NOT_A_VALUE = tuple(s.encode() for s in (
    "_url", "_uri", "_path", "_file", "_dir", "_name", "_type", "_field", "_env", "_var", "_len", "_length",
    "_header", "_prefix", "_id", "_ttl", "_expiry", "_expires", "_count", "_size"))


def entropy(value: bytes) -> float:
    """Shannon entropy in bits per byte."""
    counts: dict[int, int] = {}
    for b in value:
        counts[b] = counts.get(b, 0) + 1
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _looks_secret(value: bytes, quoted: bool) -> bool:
    """A value worth masking: long, mixed, random-looking, and not a reference to somewhere else."""
    if value[:1] in (b"$", b"{", b"<", b"%", b"/", b"~") or b"${" in value or b"{{" in value:
        return False
    if b"://" in value and b"@" not in value:  # a URL without credentials in it
        return False
    if _NAME_WORD.search(value.lower()):  # "getFirstToken", "CLIENT_TRAFFIC_SECRET_0": a name, not a secret
        return False
    digits = any(48 <= b <= 57 for b in value)
    if not quoted and (b"(" in value or b"[" in value or _DOTTED_NAME.fullmatch(value)):
        return False  # a call, a subscript, a dotted name: code, not a value
    bits = entropy(value)
    if not digits:  # words ("DAV:no-lock") unless long and random enough to be base64 without a digit
        return len(value) >= 20 and bits >= 4.0
    classes = any(97 <= b <= 122 for b in value) + any(65 <= b <= 90 for b in value) + 1
    return classes >= 2 and bits >= 3.0


def redact(data: bytes) -> tuple[bytes, list[Redaction]]:
    """``data`` with every secret found masked (same length), and what was masked, by line."""
    found: list[tuple[int, str, str]] = []  # (offset, kind, variable name)
    buf = bytearray()  # a copy of ``data``, made at the first secret

    def mask(start: int, end: int) -> None:
        if not buf:
            buf.extend(data)
        for i in range(start, end):
            if buf[i] not in (10, 13):  # keep line breaks: line numbers stay true
                buf[i] = MASK

    for m in _KEY_BEGIN.finditer(data):
        end = data.find(b"-----END " + m.group(1) + b"-----", m.end(), m.end() + MAX_KEY_BLOCK)
        if end < 0:  # no end line near: mask the base64 lines that follow the header
            end = m.end() + (2 if data.startswith(b"\r\n", m.end()) else int(data.startswith(b"\n", m.end())))
            while (body := _BASE64_LINE.match(data, end)) is not None and body.end() > end:
                end = body.end()
        if end > m.end() + 1:
            mask(m.end(), end)
            found.append((m.start(), "private-key", ""))
    for shape in _SHAPES:
        for m in shape.regex.finditer(data):
            start, end = m.start(), m.end()
            if (start and data[start - 1] in shape.before) or (end < len(data) and data[end] in shape.after):
                continue
            mask(start + shape.keep, end)
            found.append((start, shape.kind, ""))
            if shape.kind == "aws-access-key":  # its secret key travels beside it: 40 base64 characters
                line_start, line_end = data.rfind(b"\n", 0, start) + 1, data.find(b"\n", end)
                for key in _AWS_SECRET.finditer(data, line_start, len(data) if line_end < 0 else line_end):
                    if _looks_secret(key.group(), True):
                        mask(key.start(), key.end())
                        found.append((key.start(), "aws-secret-key", ""))
    _redact_assignments(data, bytes(buf) if buf else data, mask, found)
    if not buf:
        return data, []
    found.sort()
    redactions, line, pos = [], 1, 0
    for offset, kind, name in found:
        line += data.count(b"\n", pos, offset)
        pos = offset
        redactions.append(Redaction(line, kind, name))
    return bytes(buf), redactions


def _redact_assignments(data: bytes, current: bytes, mask: Callable[[int, int], None],
                        found: list[tuple[int, str, str]]) -> None:
    """Mask values assigned to secret-sounding names (``current``: ``data`` with the shapes masked)."""
    lowered = data.lower()
    seen: set[int] = set()  # names already looked at (by where they end): "secret_token" once
    for needle in _NAME_NEEDLES:
        pos = lowered.find(needle)
        while pos >= 0:
            rest = _NAME_REST.match(lowered, pos + len(needle))
            pos = lowered.find(needle, pos + 1)
            name_end = rest.end() if rest is not None else pos
            if name_end in seen:
                continue
            seen.add(name_end)
            assigned = _ASSIGNED.match(current, name_end)
            if assigned is None:
                continue
            head = _NAME_START.search(lowered, max(0, name_end - 128), name_end)
            start = head.start() if head is not None else name_end
            name = lowered[start:name_end]
            if not _NAME_WORD.search(name) or name.endswith(_NOT_A_VALUE):
                continue  # "keyboard = ...", or about a secret (SECRET_KEY_FILE), not one
            quote, value = assigned.group(1), assigned.group(2)
            if quote and current[assigned.end(2):assigned.end(2) + 1] != quote:
                continue  # the literal goes on past what we read (spaces inside): not a token
            if not quote and not _ENDS_LINE.match(current, assigned.end(2)):
                continue  # code goes on after it (`a = b ? c : d`, `x: y,`): an expression, not a value
            if not _looks_secret(value, bool(quote)):
                continue
            mask(assigned.start(2), assigned.end(2))
            found.append((assigned.start(2), "secret-assignment", data[start:name_end].decode("ascii", "replace")))
