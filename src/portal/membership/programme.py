"""The programme settings store: versions with effective dates, the one in effect, audited edits.

Versions are append-only evidence: each ``ProgrammeVersion`` row holds a whole
``ProgrammeSettings`` (JSON) in force from its ``effective_from`` (an Asia/Shanghai date) until
the next version's date. A version is never replaced or edited; a new one is saved for today or
a later day, with a reason, and the audit log records which figures it changed.

The administrator's form speaks human units (yuan, 折, "3,8", one catalogue item per line):
programme_form.py reads and writes it (``settings_from_form``, ``form_values``; re-exported here).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from .. import clock
from .. import versions as versions_
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..customers.service import InvalidInput
from ..driver_sql import Prebuilt
from .models import CardAccount, MembershipApplication, ProgrammeVersion
# The form in human units (programme_form.py), re-exported: see __all__.
from .programme_form import (BOOL_FIELDS, DISCOUNT_FIELDS, INT_FIELDS, MONEY_FIELDS, fen_from_yuan, form_values,
                             per_mille_from_zhe, settings_from_form, yuan_text, zhe_text)
from .rules import programme_today
from .settings import (
    DEFAULT_SETTINGS,
    ProgrammeSettings,
    settings_from_json,
    settings_to_json,
)

__all__ = [
    "BOOL_FIELDS",
    "DISCOUNT_FIELDS",
    "INT_FIELDS",
    "MONEY_FIELDS",
    "NOTE_MAX",
    "VersionView",
    "changed_fields",
    "check_note",
    "current_settings",
    "default_effective_from",
    "fen_from_yuan",
    "form_values",
    "per_mille_from_zhe",
    "save_version",
    "settings_from_form",
    "settings_on",
    "versions",
    "yuan_text",
    "zhe_text",
]

NOTE_MIN, NOTE_MAX = 5, 500

# ---------------------------------------------------------------------------
# Reading the store
# ---------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _parsed(body: str) -> ProgrammeSettings:
    """A stored body, parsed once per process: the row is still read on every call (a new version
    is seen at once, in every process); only the JSON of a body already seen is not parsed again
    (ProgrammeSettings and its records are frozen)."""
    return settings_from_json(body)


_BODY_ON = Prebuilt(select(ProgrammeVersion.body).where(ProgrammeVersion.effective_from <= bindparam("at"))
                    .order_by(ProgrammeVersion.effective_from.desc()).limit(1))


def settings_read(conn: Connection, day: date) -> ProgrammeSettings:
    """settings_on() on a connection (the file page's snapshot): the body alone, on the driver's
    cursor, no ORM object."""
    rows = _BODY_ON.all(conn, {"at": day})
    return _parsed(rows[0][0]) if rows else DEFAULT_SETTINGS


def settings_on(s: Session, day: date) -> ProgrammeSettings:
    """The stored version in effect on ``day`` (latest ``effective_from <= day``), else the defaults."""
    return settings_read(s.connection(), day)


def current_settings(s: Session) -> ProgrammeSettings:
    """The settings in effect today (Asia/Shanghai, by ``portal.clock``)."""
    return settings_on(s, programme_today())


@dataclass(frozen=True)
class VersionView:
    """A stored version as the pages show it."""

    id: int
    effective_from: date
    settings: ProgrammeSettings
    note: str
    created_by: str        # username; "" when written by the system
    created_at: datetime
    in_effect: bool        # the version that applies today
    upcoming: bool         # takes effect after today


def versions(s: Session) -> list[VersionView]:
    """Every stored version, latest effective date first, flagged in effect / upcoming as of today."""
    today = programme_today()
    rows = s.execute(
        select(ProgrammeVersion, User.username)
        .outerjoin(User, User.id == ProgrammeVersion.created_by_id)
        .order_by(ProgrammeVersion.effective_from.desc())
    ).all()
    current = next((v.effective_from for v, _ in rows if v.effective_from <= today), None)
    return [VersionView(id=v.id, effective_from=v.effective_from, settings=settings_from_json(v.body),
                        note=v.note, created_by=username or "", created_at=v.created_at,
                        in_effect=v.effective_from == current, upcoming=v.effective_from > today)
            for v, username in rows]


def changed_fields(old: ProgrammeSettings, new: ProgrammeSettings) -> list[str]:
    """Names of the figures that differ (the effective date is not a figure)."""
    return [f.name for f in dataclasses.fields(ProgrammeSettings)
            if f.name != "effective_from" and getattr(old, f.name) != getattr(new, f.name)]


# ---------------------------------------------------------------------------
# Saving a version
# ---------------------------------------------------------------------------


def save_version(s: Session, actor: Actor, new_settings: ProgrammeSettings, note: str) -> ProgrammeVersion:
    """Append a version in force from ``new_settings.effective_from``, audited, in the caller's transaction.

    Refused with ``InvalidInput`` (nothing written): a date before today (Asia/Shanghai), a date
    that already has a version (versions are never replaced), a note shorter than 5 characters,
    or removing a card type that existing cards still carry.
    """
    note = (note or "").strip()
    day = new_settings.effective_from
    errors: dict[str, str] = {}
    versions_.check_start(s, ProgrammeVersion, day, programme_today(), errors)
    check_note(note, errors)
    in_use = set(s.execute(select(CardAccount.card_type).distinct()).scalars())
    # A pending application would fail on approval if its card type disappeared.
    in_use |= set(s.execute(select(MembershipApplication.card_type)
                            .where(MembershipApplication.status == "pending").distinct()).scalars())
    if in_use - {c.code for c in new_settings.card_types}:
        errors["card_types"] = "A card type that existing cards carry cannot be removed."
    if errors:
        raise InvalidInput(errors)

    before = settings_on(s, day)
    changed = changed_fields(before, new_settings)
    row = ProgrammeVersion(effective_from=day, body=settings_to_json(new_settings), note=note,
                           created_by_id=actor.user_id, created_at=clock.now())
    versions_.add(s, row)  # another administrator may have saved the same date a moment ago
    detail = "; ".join(f"{name}: {_plain(getattr(before, name))} -> {_plain(getattr(new_settings, name))}"
                       for name in changed)
    audit.record(s, actor, "programme.edit", object_type="programme", object_id=day.isoformat(),
                 fields=changed, reason=note, detail=detail)
    return row


def check_note(note: str, errors: dict[str, str]) -> None:
    """Add ``errors["note"]`` when ``note`` cannot be a version's reason (5 to 500 characters)."""
    note = (note or "").strip()
    if len(note) < NOTE_MIN:
        errors["note"] = "Give the reason for this change (at least 5 characters)."
    elif len(note) > NOTE_MAX:
        errors["note"] = "Keep the reason under 500 characters."


def _plain(value: object) -> str:
    if isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
        return "[" + ", ".join(item.code for item in value) + "]"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def default_effective_from(s: Session) -> date:
    """Tomorrow, or the day after the latest upcoming version if that is later."""
    tomorrow = programme_today() + timedelta(days=1)
    latest = s.execute(select(ProgrammeVersion.effective_from)
                       .order_by(ProgrammeVersion.effective_from.desc()).limit(1)).scalar_one_or_none()
    return max(tomorrow, latest + timedelta(days=1)) if latest else tomorrow
