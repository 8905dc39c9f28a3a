"""One-time form keys: a form acted on once is not acted on again when it is sent twice."""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from .models import FormSubmission


class AlreadySubmitted(Exception):
    """The same form is being acted on by a concurrent request (PostgreSQL: the insert waited for
    it and failed); this transaction must roll back and the request answers as if done."""


def first_time(s: Session, actor: Actor, form_key: str | None) -> bool:
    """Record ``form_key`` in the caller's transaction; False if it was already acted on.

    No key (a client without the field): always True. Keys are per user, so one user's key can
    never stop another's form.
    """
    form_key = (form_key or "").strip()[:64]
    if not form_key:
        return True
    key = f"{actor.user_id or actor.username}:{form_key}"[:100]
    if s.get(FormSubmission, key) is not None:
        return False
    s.add(FormSubmission(key=key, used_at=clock.now()))
    try:
        s.flush()
    except IntegrityError:
        raise AlreadySubmitted(key) from None
    return True
