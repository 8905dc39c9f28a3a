"""Posting and reading notices."""
from __future__ import annotations

import json

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .. import clock
from .models import Notice


def notify(s: Session, user_id: int, kind: str, message: str, link: str = "", **params) -> None:
    s.add(Notice(user_id=user_id, created_at=clock.now(), kind=kind, message=message,
                 params=json.dumps(params, ensure_ascii=False), link=link))


def unread_count(s: Session, user_id: int) -> int:
    return s.scalar(select(func.count()).select_from(Notice)
                    .where(Notice.user_id == user_id, Notice.read_at.is_(None))) or 0


def recent(s: Session, user_id: int, limit: int = 50) -> list[Notice]:
    return list(s.scalars(select(Notice).where(Notice.user_id == user_id)
                          .order_by(Notice.id.desc()).limit(limit)))


def mark_all_read(s: Session, user_id: int) -> None:
    s.execute(update(Notice).where(Notice.user_id == user_id, Notice.read_at.is_(None))
              .values(read_at=clock.now()))
