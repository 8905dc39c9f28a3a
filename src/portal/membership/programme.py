"""The programme settings store: versions with effective dates, the one in effect, audited edits."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import ProgrammeVersion
from .rules import programme_today
from .settings import DEFAULT_SETTINGS, ProgrammeSettings, settings_from_json

__all__ = ["current_settings", "settings_on"]


def settings_on(s: Session, day: date) -> ProgrammeSettings:
    """The stored version in effect on ``day`` (latest ``effective_from <= day``), else the defaults."""
    body = s.execute(
        select(ProgrammeVersion.body)
        .where(ProgrammeVersion.effective_from <= day)
        .order_by(ProgrammeVersion.effective_from.desc())
        .limit(1)
    ).scalar_one_or_none()
    return DEFAULT_SETTINGS if body is None else settings_from_json(body)


def current_settings(s: Session) -> ProgrammeSettings:
    """The settings in effect today (Asia/Shanghai, by ``portal.clock``)."""
    return settings_on(s, programme_today())
