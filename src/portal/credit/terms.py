"""The credit terms' versions: the figures in force on a day (defaults: seed 000), new versions (admin)."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from .. import versions as versions_
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..customers.service import InvalidInput
from ..policy import Action, PermissionDenied, may_perform
from .models import CreditTermsVersion
from .rules import CreditTerms

# Each figure's bounds and the message shown next to its field when it is outside them.
BOXES = (0, 10_000, "Enter a whole number of boxes from 0 to 10,000.")
MONTHS = (0, 12, "Enter a whole number of months from 0 to 12.")
DAYS = (0, 366, "Enter a whole number of days from 0 to 366.")
BOUNDS: dict[str, tuple[int, int, str]] = {
    "institutional_boxes": BOXES, "institutional_months": MONTHS, "institutional_days": DAYS,
    "individual_boxes": BOXES, "individual_months": MONTHS, "individual_days": DAYS,
    "overdue_block_days": (1, 3650, "Enter a whole number of days from 1 to 3,650."),
    "discount_valid_days": (1, 365, "Enter a whole number of days from 1 to 365."),
    "line_leader_fine_permille": (0, 1000, "Enter a whole number from 0 to 1,000 (per mille)."),
}
NO_PERIOD = "The account period is at least one day."


def terms_on(s: Session, on: date) -> CreditTerms:
    v = versions_.in_force(s, CreditTermsVersion, on)
    return CreditTerms.from_json(v.body) if v is not None else CreditTerms()


def versions(s: Session) -> list[CreditTermsVersion]:
    return versions_.newest_first(s, CreditTermsVersion)


@dataclass(frozen=True)
class TermsVersionRow:
    effective_from: date
    terms: CreditTerms
    reason: str
    created_by: str
    created_at: datetime


def history(s: Session) -> list[TermsVersionRow]:
    """Every version, newest effective date first, with who saved it and why."""
    vs = versions(s)
    ids = {v.created_by_id for v in vs if v.created_by_id is not None}
    names = {u.id: u.username for u in s.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return [TermsVersionRow(v.effective_from, CreditTerms.from_json(v.body), v.note, names.get(v.created_by_id, "—"),
                            v.created_at) for v in vs]


def check_terms(values: Mapping[str, object]) -> CreditTerms:
    """The figures of a form (text or integers) as CreditTerms; InvalidInput names each bad field."""
    errors: dict[str, str] = {}
    figures: dict[str, int] = {}
    for name, (lo, hi, message) in BOUNDS.items():
        raw = values.get(name, "")
        text = str(raw).strip() if raw is not None else ""
        if not (text.isascii() and text.isdigit() and len(text) <= 6 and lo <= int(text) <= hi):
            errors[name] = message
        else:
            figures[name] = int(text)
    for klass in ("institutional", "individual"):
        months, days = figures.get(f"{klass}_months"), figures.get(f"{klass}_days")
        if months == 0 and days == 0:
            errors[f"{klass}_days"] = NO_PERIOD
    if errors:
        raise InvalidInput(errors)
    return CreditTerms(**figures)


def save_terms(s: Session, actor: Actor, terms: CreditTerms | Mapping[str, object], *,
               effective_from: date | None, today: date, reason: str) -> CreditTermsVersion:
    """A new version from ``effective_from`` (today or later), with a reason; audited. ``terms`` may
    be a form's figures (text): every bad field is named at once, nothing is written."""
    if not may_perform(actor, Action.CREDIT_TERMS):
        raise PermissionDenied(Action.CREDIT_TERMS)
    errors = {}
    try:
        terms = check_terms(dataclasses.asdict(terms) if isinstance(terms, CreditTerms) else terms)
    except InvalidInput as exc:
        errors.update(exc.errors)
    if effective_from is None:
        errors["effective_from"] = "Enter a date like 2026-03-10."
    else:
        versions_.check_start(s, CreditTermsVersion, effective_from, today, errors)
    if len((reason or "").strip()) < 5:
        errors["reason"] = "Give a reason (at least 5 characters)."
    elif len(reason.strip()) > 500:
        errors["reason"] = "At most 500 characters."
    if errors:
        raise InvalidInput(errors)
    v = CreditTermsVersion(effective_from=effective_from, body=terms.to_json(), note=reason.strip(),
                           created_by_id=actor.user_id, created_at=clock.now())
    versions_.add(s, v)
    audit.record(s, actor, Action.CREDIT_TERMS.value, object_type="credit_terms", object_id=str(v.id),
                 reason=v.note, detail=f"from {effective_from}: {terms.to_json()}")
    return v
