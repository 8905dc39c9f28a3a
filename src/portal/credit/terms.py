"""The credit terms' versions: the figures in force on a day (defaults: seed 000), new versions (admin)."""
from __future__ import annotations

import dataclasses
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.service import InvalidInput
from ..policy import Action, PermissionDenied, may_perform
from .models import CreditTermsVersion
from .rules import CreditTerms


def terms_on(s: Session, on: date) -> CreditTerms:
    v = s.scalar(select(CreditTermsVersion).where(CreditTermsVersion.effective_from <= on)
                 .order_by(CreditTermsVersion.effective_from.desc()).limit(1))
    return CreditTerms.from_json(v.body) if v is not None else CreditTerms()


def versions(s: Session) -> list[CreditTermsVersion]:
    return list(s.scalars(select(CreditTermsVersion).order_by(CreditTermsVersion.effective_from.desc())))


def save_terms(s: Session, actor: Actor, terms: CreditTerms, *, effective_from: date, today: date,
               reason: str) -> CreditTermsVersion:
    """A new version from ``effective_from`` (today or later), with a reason; audited."""
    if not may_perform(actor, Action.CREDIT_TERMS):
        raise PermissionDenied(Action.CREDIT_TERMS)
    errors = {}
    if effective_from < today:
        errors["effective_from"] = "A new version starts today or later: the past is never rewritten."
    elif s.scalar(select(CreditTermsVersion.id).where(CreditTermsVersion.effective_from == effective_from)):
        errors["effective_from"] = "A version already starts that day."
    for f in dataclasses.fields(terms):
        if not 0 <= getattr(terms, f.name) <= 10_000:
            errors[f.name] = "Enter a whole number from 0 to 10,000."
    if len((reason or "").strip()) < 5:
        errors["reason"] = "Give a reason."
    elif len(reason.strip()) > 500:
        errors["reason"] = "At most 500 characters."
    if errors:
        raise InvalidInput(errors)
    v = CreditTermsVersion(effective_from=effective_from, body=terms.to_json(), note=reason.strip(),
                           created_by_id=actor.user_id, created_at=clock.now())
    s.add(v)
    s.flush()
    audit.record(s, actor, Action.CREDIT_TERMS.value, object_type="credit_terms", object_id=str(v.id),
                 reason=v.note, detail=f"from {effective_from}: {terms.to_json()}")
    return v
