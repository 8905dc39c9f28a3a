"""Products by code on a date, and new versions of a product (admin, audited, never edited in place)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.service import InvalidInput
from ..policy import Action, PermissionDenied, may_perform
from .models import ProductVersion

CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
UNITS = ("bottle",)


class UnknownProduct(LookupError):
    """No product with this code is on sale that day."""


@dataclass(frozen=True)
class ProductInput:
    code: str
    name: str
    bottles_per_box: int
    list_price_fen: int
    group_price_fen: int
    active_from: date
    active_to: date | None = None
    unit: str = "bottle"
    note: str = ""


def normalise_code(raw: str) -> str:
    return (raw or "").strip().upper()


def product_on(s: Session, code: str, on: date) -> ProductVersion:
    """The version of ``code`` in force on ``on``; UnknownProduct if none (or withdrawn)."""
    v = s.scalar(select(ProductVersion).where(ProductVersion.code == normalise_code(code),
                                              ProductVersion.active_from <= on)
                 .order_by(ProductVersion.active_from.desc()).limit(1))
    if v is None or (v.active_to is not None and v.active_to < on):
        raise UnknownProduct(code)
    return v


def is_catalogue_code(s: Session, code: str) -> bool:
    return s.scalar(select(ProductVersion.id).where(ProductVersion.code == normalise_code(code)).limit(1)) is not None


def catalogue_on(s: Session, on: date) -> list[ProductVersion]:
    """Every product on sale on ``on`` (its version in force), by code."""
    rows = list(s.scalars(select(ProductVersion).where(ProductVersion.active_from <= on)
                          .order_by(ProductVersion.code, ProductVersion.active_from.desc())))
    out, seen = [], set()
    for v in rows:
        if v.code in seen:
            continue
        seen.add(v.code)
        if v.active_to is None or v.active_to >= on:
            out.append(v)
    return out


def history(s: Session, limit: int = 500) -> list[ProductVersion]:
    return list(s.scalars(select(ProductVersion).order_by(ProductVersion.code, ProductVersion.active_from.desc())
                          .limit(limit)))


def validate(data: ProductInput, today: date) -> ProductInput:
    errors: dict[str, str] = {}
    code = normalise_code(data.code)
    if not CODE.fullmatch(code):
        errors["code"] = "A product code is 1 to 32 letters, digits, '.', '_' or '-'."
    name = (data.name or "").strip()
    if not name or len(name) > 200:
        errors["name"] = "Give the product's name (at most 200 characters)."
    if data.unit not in UNITS:
        errors["unit"] = "The unit is the bottle."
    if not 1 <= data.bottles_per_box <= 100:
        errors["bottles_per_box"] = "Bottles per box: 1 to 100."
    if data.list_price_fen <= 0:
        errors["list_price"] = "Enter the list price."
    if data.group_price_fen <= 0 or data.group_price_fen > data.list_price_fen:
        errors["group_price"] = "The group price is above zero and at most the list price."
    if data.active_from < today:
        errors["active_from"] = "A new version starts today or later: the past is never rewritten."
    if data.active_to is not None and data.active_to < data.active_from:
        errors["active_to"] = "The end date is on or after the start date."
    if len((data.note or "").strip()) > 500:
        errors["note"] = "At most 500 characters."
    if errors:
        raise InvalidInput(errors)
    return ProductInput(code=code, name=name, bottles_per_box=data.bottles_per_box,
                        list_price_fen=data.list_price_fen, group_price_fen=data.group_price_fen,
                        active_from=data.active_from, active_to=data.active_to, unit=data.unit,
                        note=(data.note or "").strip())


def add_version(s: Session, actor: Actor, data: ProductInput, *, today: date) -> ProductVersion:
    """A new version of a product (or a new product) from its effective date; audited."""
    if not may_perform(actor, Action.CATALOGUE_EDIT):
        raise PermissionDenied(Action.CATALOGUE_EDIT, data.code)
    data = validate(data, today)
    if s.scalar(select(ProductVersion.id).where(ProductVersion.code == data.code,
                                                ProductVersion.active_from == data.active_from)) is not None:
        raise InvalidInput({"active_from": "This product already has a version from that day."})
    v = ProductVersion(code=data.code, name=data.name, unit=data.unit, bottles_per_box=data.bottles_per_box,
                       list_price_fen=data.list_price_fen, group_price_fen=data.group_price_fen,
                       active_from=data.active_from, active_to=data.active_to, note=data.note,
                       created_by_id=actor.user_id, created_at=clock.now())
    s.add(v)
    try:
        s.flush()
    except IntegrityError:
        raise InvalidInput({"active_from": "This product already has a version from that day."}) from None
    audit.record(s, actor, Action.CATALOGUE_EDIT.value, object_type="product", object_id=data.code,
                 reason=data.note, detail=f"version {v.id} from {data.active_from} list {data.list_price_fen} "
                                          f"group {data.group_price_fen} fen, {data.bottles_per_box}/box")
    return v
