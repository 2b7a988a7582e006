"""The prices.toml file as the running service sees it: hand edits picked up by stat
signature, a malformed file never replaces the last good overrides.

A stat per call (about a microsecond); the file is read and parsed only when its
signature changes. State is per process: a process that starts while the file is
malformed prices from the catalogue alone until the file is fixed, and says so
(:func:`current` reports the error; the admin page, ``manage.py prices check`` and the
log show it).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from budgets.prices.overrides import EMPTY, Overrides, PricesInvalid, parse_prices

log = logging.getLogger(__name__)

FILE_NAME = "prices.toml"
# Reading more than this is refused: an override file is a few kilobytes.
MAX_BYTES = 1_000_000


@dataclass(frozen=True)
class PricesFile:
    """What the service prices with: the overrides in force and the file's state."""

    overrides: Overrides
    signature: str  # "" when there is no file
    errors: tuple[str, ...] = ()  # why the file on disk is not the one in force

    @property
    def malformed(self) -> bool:
        return bool(self.errors)


def prices_path() -> Path:
    return Path(settings.HAL0_DATA_DIR) / FILE_NAME


def _signature(path: str) -> str:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return ""
    return f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"


def read_prices(path: Path) -> Overrides:
    """Parse the file at ``path`` (missing = no overrides); :class:`PricesInvalid` if bad."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return EMPTY
    except OSError as exc:
        raise PricesInvalid([f"cannot be read ({exc.strerror or 'I/O error'})"]) from exc
    if len(raw) > MAX_BYTES:
        raise PricesInvalid([f"is larger than {MAX_BYTES} bytes"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PricesInvalid(["is not UTF-8 text"]) from exc
    return parse_prices(text)


_lock = threading.Lock()
_path: tuple[object, str] = (None, "")


def _path_text() -> str:
    # A plain string, joined once per data folder: pathlib's objects cost more than the
    # stat itself, and this runs on every priced check.
    global _path
    folder = settings.HAL0_DATA_DIR
    if _path[0] is not folder:
        _path = (folder, os.path.join(folder, FILE_NAME))
    return _path[1]


_state: dict[str, PricesFile] = {}


def current() -> PricesFile:
    """The overrides in force now, reloaded when the file's signature changed."""
    key = _path_text()
    sig = _signature(key)
    state = _state.get(key)
    if state is not None and state.signature == sig:
        return state
    with _lock:
        state = _state.get(key)
        if state is not None and state.signature == sig:
            return state
        last_good = state.overrides if state is not None else EMPTY
        try:
            fresh = PricesFile(read_prices(Path(key)), sig)
        except PricesInvalid as exc:
            # Like a malformed persona file: the last good prices stay in force.
            log.warning("prices.toml is malformed, keeping the last good prices: %s", exc)
            fresh = PricesFile(last_good, sig, tuple(exc.errors))
        _state[key] = fresh
        return fresh


def forget() -> None:
    """Drop what was loaded (tests that switch data folders)."""
    with _lock:
        _state.clear()
