"""A card number the user may not use (another team's member, most often a mistyped number).

It is still a refusal and recorded as one, in plain words ("a card of another team's member: a
mistyped number?"), but the form stays as it was typed and says only that no card was found that
the user may use: no alarming page, nothing about whose card it is.
"""
from __future__ import annotations

from litestar import Request

from .. import i18n
from ..audit import service as audit
from ..membership.cards import CardNotYours
from ..policy import may_perform
from .security import visitor

REASON = "card not in scope"  # said in words by audit.wording (REASON_WORDS)


def refuse_card_quietly(request: Request, exc: CardNotYours) -> str:
    """Record the refusal (its own transaction: the request's work is undone); the field's message.
    A role that never takes this step is refused as loudly as anywhere else (the exception again)."""
    v = visitor(request)
    if v.actor is None or not may_perform(v.actor, exc.action):
        raise exc
    with request.app.state.db.write() as s:
        audit.record(s, v.actor, exc.action.value, audit.DENIED, object_type=exc.action.obj,
                     object_id=exc.object_id, reason=REASON, detail=f"{request.method} {request.url.path}")
    return i18n.gettext("No card found that you may use.")
