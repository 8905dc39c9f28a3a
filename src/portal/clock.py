"""The one source of 'now' (UTC), replaceable in tests."""
from __future__ import annotations

from datetime import datetime, timezone

_override: datetime | None = None


def now() -> datetime:
    """Current time, UTC, timezone-aware."""
    return _override if _override is not None else datetime.now(timezone.utc)


def set_now(value: datetime | None) -> None:
    """Freeze the clock (tests only); None returns to real time."""
    global _override
    _override = value
