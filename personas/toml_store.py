"""Persona TOML files: text -> typed spec -> text. Pure code: no ORM, no settings.

Parsing uses :mod:`tomllib` with ``parse_float=Decimal`` so a cap never passes through a
binary float. Writing uses tomlkit, which keeps every other table, key order and comment
of the operator's file byte for byte; only the known keys of ``[persona.budget]`` change.
Paths are always passed in by the caller (``personas.paths`` builds them from validated
ids); error messages never contain one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import tomlkit

from hal0.money import MoneyError, parse_usd, to_decimal, usd_number

# The caps of [persona.budget], in the order they are written into a new block.
CAP_KEYS: tuple[str, ...] = ("daily_usd", "monthly_usd", "lifetime_usd", "per_call_max_usd")
# Token caps (extension), in any budget block: counts of input + output tokens.
TOKEN_KEYS: tuple[str, ...] = (
    "daily_tokens",
    "monthly_tokens",
    "lifetime_tokens",
    "per_call_max_tokens",
)
KNOWN_KEYS: tuple[str, ...] = (
    *CAP_KEYS,
    *TOKEN_KEYS,
    "hard_cap",
    "warn_at",
    "timezone",
    "paused",
)
_CAP_ATTRS: dict[str, str] = {
    "daily_usd": "daily_nanos",
    "monthly_usd": "monthly_nanos",
    "lifetime_usd": "lifetime_nanos",
    "per_call_max_usd": "per_call_nanos",
    "daily_tokens": "daily_tokens",
    "monthly_tokens": "monthly_tokens",
    "lifetime_tokens": "lifetime_tokens",
    "per_call_max_tokens": "per_call_tokens",
}
# The most tokens a cap may name: far above any real budget, and the token counters and
# sums stay 64-bit integers.
MAX_TOKENS = 10**15
# The three budget files, by their top-level table.
ScopeKind = Literal["persona", "agent", "platform"]
# A "\n" that does not end a "\r\n".
_BARE_LF = re.compile(r"(?<!\r)\n")
# The row stores warn_at as DECIMAL(6, 4): more digits would be rounded silently.
WARN_AT_PLACES = 4
TIMEZONE_MAX_LEN = 64


class BudgetInvalid(ValueError):
    """A ``[persona.budget]`` value is wrong; ``key`` names it, the message says why."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key


class PersonaMalformed(ValueError):
    """A persona file that cannot be used; the message never contains a path."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class BudgetSpec:
    """One ``[persona.budget]`` block. ``None`` = no cap on that window; 0 is a real cap."""

    daily_nanos: int | None = None
    monthly_nanos: int | None = None
    lifetime_nanos: int | None = None
    per_call_nanos: int | None = None
    daily_tokens: int | None = None
    monthly_tokens: int | None = None
    lifetime_tokens: int | None = None
    per_call_tokens: int | None = None
    hard_cap: bool = True
    warn_at: Decimal | None = None
    timezone: str | None = None
    # The stop switch: every check at this scope is refused, whatever the estimate.
    paused: bool = False
    # Keys this version does not know, kept so a write never drops an operator's setting.
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    def cap(self, key: str) -> int | None:
        """The cap for a TOML/JSON key such as ``daily_usd`` or ``daily_tokens``."""
        value: int | None = getattr(self, _CAP_ATTRS[key])
        return value

    def to_api(self) -> dict[str, Any]:
        """The GET ``budget`` object: unset caps left out, ``hard_cap`` always present."""
        out: dict[str, Any] = {}
        for key in CAP_KEYS:
            nanos = self.cap(key)
            if nanos is not None:
                out[key] = usd_number(nanos)
        for key in TOKEN_KEYS:
            tokens = self.cap(key)
            if tokens is not None:
                out[key] = tokens
        out["hard_cap"] = self.hard_cap
        if self.warn_at is not None:
            out["warn_at"] = float(self.warn_at)
        if self.timezone is not None:
            out["timezone"] = self.timezone
        if self.paused:
            # Only when set: an unpaused block reads exactly as hal0's does.
            out["paused"] = True
        return out

    @property
    def has_caps(self) -> bool:
        return any(self.cap(key) is not None for key in (*CAP_KEYS, *TOKEN_KEYS))


@dataclass(frozen=True)
class PersonaSpec:
    id: str
    display_name: str
    summary: str
    budget: BudgetSpec
    text: str
    # Read for display only; the service enforces nothing from them.
    system_prompt: str = ""
    preferred_upstream: str = ""
    preferred_model: str = ""


class PersonaBudgetRow(Protocol):
    """What :func:`budget_spec_from_persona` reads: the Persona row's budget columns."""

    daily_cap_nanos: int | None
    monthly_cap_nanos: int | None
    lifetime_cap_nanos: int | None
    per_call_cap_nanos: int | None
    daily_cap_tokens: int | None
    monthly_cap_tokens: int | None
    lifetime_cap_tokens: int | None
    per_call_cap_tokens: int | None
    hard_cap: bool
    warn_at: Decimal | None
    timezone: str
    paused: bool
    budget_extra: Any


# ---------------------------------------------------------------------------------------
# Validation


# Names the zone database answers on some hosts but that are no IANA zone a budget can
# mean: "localtime" is whatever the host is set to, "Factory" is a placeholder with the
# abbreviation "-00", "posixrules" is a default-rules file, and the "posix/" and "right/"
# trees are copies of the database under other names ("right/" counts leap seconds). A
# file written with one of them would reset its windows at different times on different
# hosts, or not load at all where the name is missing.
_HOST_DEPENDENT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
_HOST_DEPENDENT_PREFIXES = ("posix/", "right/")


@lru_cache(maxsize=1)
def iana_timezones() -> frozenset[str]:
    """Every time zone name a budget may use: the IANA database less host-dependent names."""
    return frozenset(
        name
        for name in available_timezones()
        if name not in _HOST_DEPENDENT_ZONES and not name.startswith(_HOST_DEPENDENT_PREFIXES)
    )


@lru_cache(maxsize=1024)
def is_known_timezone(name: str) -> bool:
    """True for an IANA zone name (``UTC``, ``Europe/Berlin``) that loads on this host."""
    if not name or len(name) > TIMEZONE_MAX_LEN or name not in iana_timezones():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _parse_cap(key: str, raw: object) -> int:
    try:
        return parse_usd(raw, field=key)
    except MoneyError as exc:
        raise BudgetInvalid(str(exc), key) from exc


def _parse_tokens(key: str, raw: object) -> int:
    # An integer only: 1.5 tokens is a mistake, and 1e3 as a float would hide one.
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise BudgetInvalid(f"{key} must be a whole number of tokens", key)
    if raw < 0:
        raise BudgetInvalid(f"{key} must be >= 0", key)
    if raw > MAX_TOKENS:
        raise BudgetInvalid(f"{key} must be at most {MAX_TOKENS} tokens", key)
    return raw


def _parse_warn_at(raw: object) -> Decimal:
    message = "warn_at must be a number between 0 and 1"
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
        raise BudgetInvalid(message, "warn_at")
    value = Decimal(str(raw)) if isinstance(raw, float) else Decimal(raw)
    # 0 would put every persona in "warn" from the first cent; above 1 never warns.
    if not value.is_finite() or not (0 < value <= 1):
        raise BudgetInvalid(message, "warn_at")
    # Compared with its rounding, not through normalize(): that underflows a value such as
    # 1E-9999999 to 0 and would let it pass. Safe here: 0 < value <= 1.
    if value.quantize(Decimal(1).scaleb(-WARN_AT_PLACES)) != value:
        raise BudgetInvalid(f"warn_at must have at most {WARN_AT_PLACES} decimal places", "warn_at")
    return value


def _parse_timezone(raw: object) -> str:
    if not isinstance(raw, str):
        raise BudgetInvalid("timezone must be a string such as 'Europe/Berlin'", "timezone")
    if not is_known_timezone(raw):
        # repr() keeps control characters of a hostile value out of logs and pages.
        shown = raw if len(raw) <= TIMEZONE_MAX_LEN else raw[:TIMEZONE_MAX_LEN] + "..."
        raise BudgetInvalid(f"timezone {shown!r} is not a known IANA time zone", "timezone")
    return raw


def parse_budget_mapping(mapping: Mapping[str, Any]) -> BudgetSpec:
    """Validate a ``[persona.budget]`` table (or a PUT body) into a :class:`BudgetSpec`.

    Missing or ``null`` cap = no cap; missing ``hard_cap`` = true. Unknown keys are kept
    in ``extra`` (a PUT body refuses them before calling this).
    """
    if not isinstance(mapping, Mapping):
        raise BudgetInvalid("[persona.budget] must be a table", None)
    caps: dict[str, int | None] = {}
    for key in CAP_KEYS:
        raw = mapping.get(key)
        caps[_CAP_ATTRS[key]] = None if raw is None else _parse_cap(key, raw)
    for key in TOKEN_KEYS:
        raw = mapping.get(key)
        caps[_CAP_ATTRS[key]] = None if raw is None else _parse_tokens(key, raw)
    hard_cap = mapping.get("hard_cap", True)
    if not isinstance(hard_cap, bool):
        raise BudgetInvalid("hard_cap must be true or false", "hard_cap")
    raw_warn = mapping.get("warn_at")
    warn_at = None if raw_warn is None else _parse_warn_at(raw_warn)
    raw_tz = mapping.get("timezone")
    tz = None if raw_tz is None else _parse_timezone(raw_tz)
    paused = mapping.get("paused", False)
    if not isinstance(paused, bool):
        raise BudgetInvalid("paused must be true or false", "paused")
    extra = {str(k): v for k, v in mapping.items() if k not in KNOWN_KEYS}
    return BudgetSpec(
        hard_cap=hard_cap, warn_at=warn_at, timezone=tz, paused=paused, extra=extra, **caps
    )


def budget_spec_from_persona(persona: PersonaBudgetRow) -> BudgetSpec:
    """The spec a budget row holds (its last good caps): a Persona, an Agent or the
    Platform row. Duck-typed: no ORM import."""
    return BudgetSpec(
        daily_nanos=persona.daily_cap_nanos,
        monthly_nanos=persona.monthly_cap_nanos,
        lifetime_nanos=persona.lifetime_cap_nanos,
        per_call_nanos=persona.per_call_cap_nanos,
        daily_tokens=persona.daily_cap_tokens,
        monthly_tokens=persona.monthly_cap_tokens,
        lifetime_tokens=persona.lifetime_cap_tokens,
        per_call_tokens=persona.per_call_cap_tokens,
        hard_cap=persona.hard_cap,
        warn_at=None if persona.warn_at is None else Decimal(persona.warn_at).normalize(),
        timezone=persona.timezone or None,
        paused=bool(persona.paused),
        extra=dict(persona.budget_extra or {}),
    )


def jsonable(value: Any) -> Any:
    """A TOML value as JSON (for the row's ``budget_extra``): decimals, dates, nesting."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)  # JSON (and PostgreSQL's jsonb) has no NaN or Infinity
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------
# Persona files


def _optional_str(table: Mapping[str, Any], key: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise PersonaMalformed(f"[persona].{key} must be a string")
    return value


def parse_persona_text(text: str, *, stem: str) -> PersonaSpec:
    """Parse a persona file's text; ``stem`` is its file name without ``.toml``."""
    try:
        doc = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message has line and column, never the file's path.
        raise PersonaMalformed(f"TOML syntax error: {exc}") from exc
    persona = doc.get("persona")
    if not isinstance(persona, dict):
        raise PersonaMalformed("missing [persona] table")
    if "id" not in persona:
        raise PersonaMalformed("[persona].id is missing")
    persona_id = persona["id"]
    if not isinstance(persona_id, str) or not persona_id:
        raise PersonaMalformed("[persona].id must be a non-empty string")
    if persona_id != stem:
        shown = persona_id[:TIMEZONE_MAX_LEN]
        raise PersonaMalformed(
            f"[persona].id {shown!r} does not match the file name {stem + '.toml'!r}"
        )
    display_name = _optional_str(persona, "display_name", persona_id)
    summary = _optional_str(persona, "summary", "")
    try:
        budget = parse_budget_mapping(persona.get("budget", {}))
    except BudgetInvalid as exc:
        prefix = "[persona.budget] " if exc.key else ""
        raise PersonaMalformed(f"{prefix}{exc.message}") from exc
    prompt = persona.get("prompt")
    model = persona.get("model")
    return PersonaSpec(
        id=persona_id,
        display_name=display_name,
        summary=summary,
        budget=budget,
        text=text,
        system_prompt=_lenient_str(prompt, "system"),
        preferred_upstream=_lenient_str(model, "preferred_upstream"),
        preferred_model=_lenient_str(model, "preferred_model"),
    )


@dataclass(frozen=True)
class ScopeFileSpec:
    """An ``agent.toml`` or ``platform.toml``: the scope's budget (and an agent's name)."""

    kind: ScopeKind
    display_name: str
    budget: BudgetSpec
    text: str


def parse_scope_text(text: str, *, kind: ScopeKind, agent_id: str | None = None) -> ScopeFileSpec:
    """Parse ``agents/<a>/agent.toml`` (``kind="agent"``) or ``platform.toml``.

    Both tables are optional (no ``[agent.budget]`` = no caps at that scope); an
    ``[agent].id`` that is present must name the agent's folder. Errors never carry a path.
    """
    try:
        doc = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise PersonaMalformed(f"TOML syntax error: {exc}") from exc
    owner = doc.get(kind, {})
    if not isinstance(owner, dict):
        raise PersonaMalformed(f"[{kind}] must be a table")
    display_name = ""
    if kind == "agent":
        if "id" in owner and owner["id"] != agent_id:
            shown = str(owner["id"])[:TIMEZONE_MAX_LEN]
            raise PersonaMalformed(f"[agent].id {shown!r} does not match the agent's folder")
        display_name = owner.get("display_name", "")
        if not isinstance(display_name, str):
            raise PersonaMalformed("[agent].display_name must be a string")
    try:
        budget = parse_budget_mapping(owner.get("budget", {}))
    except BudgetInvalid as exc:
        prefix = f"[{kind}.budget] " if exc.key else ""
        raise PersonaMalformed(f"{prefix}{exc.message}") from exc
    return ScopeFileSpec(kind=kind, display_name=display_name, budget=budget, text=text)


def _lenient_str(table: object, key: str) -> str:
    value = table.get(key) if isinstance(table, dict) else None
    return value if isinstance(value, str) else ""


def _toml_number(nanos: int) -> Any:
    # A TOML float from the exact decimal text: 5 -> 5.0, 0.1 -> 0.1 (shortest round trip).
    return tomlkit.item(float(to_decimal(nanos)))


def _same_value(key: str, current: Any, wanted: Any) -> bool:
    """Whether the file already says ``wanted`` (then its spelling is left alone)."""
    try:
        if key in CAP_KEYS:
            return bool(parse_usd(current, field=key) == wanted)
        if key in TOKEN_KEYS:
            return bool(_parse_tokens(key, current) == wanted)
        if key == "warn_at":
            return bool(_parse_warn_at(current) == wanted)
    except (MoneyError, BudgetInvalid):
        return False
    return type(current) is type(wanted) and bool(current == wanted)


def render_budget(text: str, spec: BudgetSpec, *, kind: ScopeKind = "persona") -> str:
    """``text`` with its ``[<kind>.budget]`` set to ``spec``; nothing else changes.

    Known keys are replaced in place (a value the file already holds keeps its spelling and
    comment), removed when unset, appended when new; unknown keys stay. The table is
    created at the end of the file if missing; for an agent or the platform file, so is
    the ``[agent]`` / ``[platform]`` table (a persona file without ``[persona]`` is
    malformed).
    """
    doc = tomlkit.parse(text)
    owner = doc.get(kind)
    if owner is None:
        if kind == "persona":
            raise PersonaMalformed("missing [persona] table")
        doc[kind] = tomlkit.table()
        owner = doc[kind]
    if "budget" not in owner:
        owner["budget"] = tomlkit.table()
    budget = owner["budget"]

    wanted: dict[str, Any] = {key: spec.cap(key) for key in (*CAP_KEYS, *TOKEN_KEYS)}
    wanted["hard_cap"] = spec.hard_cap  # always written: the operator sees it is enforced
    wanted["warn_at"] = spec.warn_at
    wanted["timezone"] = spec.timezone
    # Written while paused; resuming sets it to false (the switch stays where an operator
    # looks for it, with its comment); never added to a file that lacks it while off.
    wanted["paused"] = True if spec.paused else (False if "paused" in budget else None)
    for key, value in wanted.items():
        if value is None:
            if key in budget:
                del budget[key]
            continue
        if key in budget and _same_value(key, budget[key], value):
            continue
        if key in CAP_KEYS:
            budget[key] = _toml_number(value)
        elif key == "warn_at":
            budget[key] = tomlkit.item(float(value))
        else:
            budget[key] = value
    # Extra keys the spec carries but the file lacks (a block rebuilt from the row).
    for key, value in spec.extra.items():
        if key not in budget:
            budget[key] = value
    out = tomlkit.dumps(doc)
    if "\r\n" in text and _BARE_LF.search(text) is None:
        # tomlkit writes new lines as "\n"; a file saved with Windows line endings keeps
        # them on every line, old or new, instead of ending up mixed.
        out = _BARE_LF.sub("\r\n", out)
    return out


# ---------------------------------------------------------------------------------------
# Files on disk


def write_atomic(path: Path, text: str | bytes, *, overwrite: bool = True) -> None:
    """Replace ``path`` with ``text`` so a reader sees the old file or the new, never half.

    Temp file in the same folder (same filesystem, so the rename is atomic), fsync, rename,
    then fsync the folder so the rename itself survives a crash. ``overwrite=False`` links
    the temp file into place instead, which fails with ``FileExistsError`` when ``path``
    exists, even one created a moment ago: seeding never replaces an operator's file.
    """
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8") if isinstance(text, str) else text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def signature(path: Path | str) -> str:
    """Cheap change detector: an editor's save changes mtime, size or inode."""
    st = os.stat(path)
    return f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PersonaMalformed("file is not valid UTF-8 text") from exc
