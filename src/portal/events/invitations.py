"""Invitations: one row per invited member of an event (the tiers invited, within the event's unit).

``invite`` records the invitations in the caller's transaction. The messages themselves go out
through the outbox (another part of the portal): the marked place below is where the invitation
message is written to the outbox, in the same transaction as the invitation row.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..audit import service as audit
from ..membership.models import Membership
from ..membership.rules import PROGRAMME_TZ
from ..messages import outbox
from ..policy import Action
from ..policy.scope import subtree_range
from . import rules
from .models import Event, EventInvitation


def _event_context(event: Event) -> dict:
    """What an invitation or notice says about the event (no personal data)."""
    return {"event_title": event.theme, "event_place": event.place,
            "event_when": event.starts_at.astimezone(PROGRAMME_TZ).strftime("%Y-%m-%d %H:%M")}


def invite(s: Session, event: Event, actor: Actor) -> int:
    """Invite every active member of the invited tiers in the event's unit and below who is not
    invited yet; returns how many were invited now (0 when everyone already was). Idempotent.

    The caller authorises (``event.manage`` on the event's unit) and holds the event's lock.
    """
    lo, hi = subtree_range(event.unit_path)
    already = select(EventInvitation.membership_id).where(EventInvitation.event_id == event.id)
    tiers = [t.value for t in rules.tiers_of(event.tiers)]
    members = list(s.scalars(select(Membership).where(
        Membership.unit_path >= lo, Membership.unit_path < hi, Membership.status == "active",
        Membership.tier.in_(tiers), Membership.id.not_in(already)).order_by(Membership.id)))
    now = clock.now()
    for m in members:
        s.add(EventInvitation(event_id=event.id, membership_id=m.id, invited_at=now,
                              invited_by_id=actor.user_id))
        # The invitation goes out through the outbox in this transaction (a rollback sends
        # nothing); consent for marketing, quiet hours and rates are the outbox's business.
        outbox.enqueue(s, customer_id=m.customer_id, kind="event_invitation", purpose="marketing",
                       context=_event_context(event), reference=f"event:{event.id}", actor=actor)
    event.invited_at = event.invited_at or now
    s.flush()
    audit.record(s, actor, Action.EVENT_MANAGE.value, object_type="event", object_id=str(event.id),
                 detail=f"invited {len(members)} members (tiers {event.tiers})")
    return len(members)


def send_invitations(s: Session, actor: Actor, event_id: int) -> int:
    """A leader of the event's unit invites the members of its tiers (``invite``), audited."""
    from ..customers.service import InvalidInput
    from ..policy import PermissionDenied
    from .planning import get_event, may_manage

    ev = get_event(s, actor, event_id, lock=True)
    if not may_manage(actor, ev.unit_path):
        raise PermissionDenied(Action.EVENT_MANAGE, f"event {event_id}")
    if ev.status != "planned" or ev.ends_at <= clock.now():
        raise InvalidInput({"invite": "This event is over or cancelled."})
    return invite(s, ev, actor)
