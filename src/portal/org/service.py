"""Creating and reading organisation units."""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..audit import service as audit
from .models import OrgUnit

CODE_RE = re.compile(r"^[0-9A-Za-z]{1,6}$")


class OrgError(ValueError):
    """A refused unit change: an English msgid with ``params`` (see ``i18n.error_text``)."""

    def __init__(self, field: str, message: str, **params):
        super().__init__(message % params if params else message)
        self.field, self.message, self.params = field, message, params


def add_unit(s: Session, code: str, name: str, parent_code: str | None = None, *,
             by: Actor | None = None) -> OrgUnit:
    code, name = code.strip(), " ".join(name.split())
    if not CODE_RE.match(code):
        raise OrgError("code", "Unit code must be 1 to 6 letters or digits.")
    if not name or len(name) > 100:
        raise OrgError("name", "Unit name must be 1 to 100 characters.")
    if s.scalar(select(OrgUnit).where(OrgUnit.code == code)):
        raise OrgError("code", "Unit code %(code)s is already in use.", code=code)
    parent = None
    if parent_code:
        parent = unit_by_code(s, parent_code)
        if parent is None:
            raise OrgError("parent", "No unit with code %(code)s.", code=parent_code)
    elif s.scalar(select(OrgUnit.id).where(OrgUnit.parent_id.is_(None)).limit(1)) is not None:
        raise OrgError("parent", "A company already exists; give the parent unit.")
    if parent is not None and parent.depth == 0 and not code.isdigit():
        # A region's code starts every file number made in it ("755 00243").
        raise OrgError("code", "A region's code must be 1 to 6 digits.")
    unit = OrgUnit(code=code, name=name, parent_id=parent.id if parent else None,
                   depth=(parent.depth + 1) if parent else 0)
    s.add(unit)
    s.flush()
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    s.flush()
    audit.record(s, by or Actor.system(), "unit.create", object_type="unit", object_id=code,
                 detail=f"parent={parent_code or ''}")
    return unit


def unit_by_code(s: Session, code: str) -> OrgUnit | None:
    return s.scalar(select(OrgUnit).where(OrgUnit.code == code.strip()))


def all_units(s: Session) -> list[OrgUnit]:
    return list(s.scalars(select(OrgUnit).order_by(OrgUnit.path)))


def region_of(s: Session, unit: OrgUnit) -> OrgUnit:
    """The region a unit belongs to: its ancestor at depth 1 (or itself / the root)."""
    if unit.depth <= 1:
        return unit
    region_id = int(unit.path.strip("/").split("/")[1])
    return s.get(OrgUnit, region_id)


def is_within(unit_path: str, ancestor_path: str) -> bool:
    return unit_path.startswith(ancestor_path)
