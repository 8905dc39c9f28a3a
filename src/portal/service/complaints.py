"""Complaints (投诉, seed 001 六.2): recorded, passed on and investigated (finding, cause, responsible
party), a resolution proposed, the member told, the member's satisfaction recorded; closed when
satisfied, otherwise reopened with a new promised date and investigated again, "until the member
is satisfied". Every step is a row of the complaint's history with who and when.

Scope: the complaint's file decides (owner and unit, read from the file now, so a reassigned
file's complaints follow it); customer service works every complaint. Gold and platinum members'
complaints come first in the queue (seed 001: 優先客服). A reply to the member is recorded on the
complaint ("told" step); sending it is the outbox's business.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, case, func, literal, select
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..customers.service import InvalidInput, NotFound
from ..membership.models import Membership
from ..membership.rules import programme_date, programme_today
from ..policy import Action, PermissionDenied, can
from ..policy.scoped import Scoped, ScopeArms
from ..vault import Vault
from . import members
from .models import Complaint, ComplaintStep

TABLE, STEP_TABLE = "complaint", "complaint_step"
CHANNELS = ("hotline", "online", "email", "in_store", "salesperson")
KINDS = ("product", "service", "delivery", "price", "points", "other")
CAUSES = ("product_defect", "staff_conduct", "process", "logistics", "pricing_error", "system",
          "misunderstanding", "other")
HOW_TOLD = ("phone", "sms", "email", "in_person")
PRIORITY_TIERS = ("gold", "platinum")
# Which step each state waits for; the member has not been told while one of UNTOLD.
NEXT_STEP = {"recorded": "investigate", "reopened": "investigate", "investigated": "propose",
             "proposed": "tell", "told": "satisfaction"}
UNTOLD = ("recorded", "reopened", "investigated", "proposed")
MAX_PROMISE_DAYS = 90


def _promised(form: dict, errors: dict, today: date) -> date | None:
    raw = (form.get("promised_on") or "").strip()
    try:
        d = date.fromisoformat(raw)
    except ValueError:
        errors["promised_on"] = "Enter the promised reply date as YYYY-MM-DD."
        return None
    if not today <= d <= today + timedelta(days=MAX_PROMISE_DAYS):
        errors["promised_on"] = "The promised reply date is today or within 90 days."
        return None
    return d


def _step(s: Session, vault: Vault, actor: Actor, c: Complaint, step: str, detail: str = "",
          note: str = "") -> ComplaintStep:
    row = ComplaintStep(complaint_id=c.id, step=step, detail=detail[:200], by_id=actor.user_id, at=clock.now())
    s.add(row)
    s.flush()
    if note:
        row.note_ct = members.seal(vault, STEP_TABLE, "note", row.id, note)
        s.flush()
    return row


def record_complaint(s: Session, vault: Vault, actor: Actor, form: dict, *, file_id=None,
                     today: date | None = None) -> Complaint:
    """Record a complaint on a member's file (``file_id``, or the card/file number in ``member``)."""
    today = today or programme_today()
    errors: dict[str, str] = {}
    ref = None
    try:
        ref = (members.by_id(s, actor, file_id, Action.COMPLAINT_RECORD) if file_id
               else members.by_number(s, actor, form.get("member", ""), Action.COMPLAINT_RECORD))
    except InvalidInput as exc:
        errors.update(exc.errors)
    channel = members.choice(form, "channel", CHANNELS, errors, "Choose a channel.")
    kind = members.choice(form, "kind", KINDS, errors, "Choose a type.")
    content = members.text_field(form, "content", errors)
    promised = _promised(form, errors, today)
    if errors:
        raise InvalidInput(errors)
    now = clock.now()
    c = Complaint(customer_id=ref.customer_id, channel=channel, kind=kind, promised_on=promised,
                  recorded_month=programme_date(now).strftime("%Y-%m"), recorded_by_id=actor.user_id,
                  recorded_at=now, updated_at=now)
    s.add(c)
    s.flush()
    c.content_ct = members.seal(vault, TABLE, "content", c.id, content)
    _step(s, vault, actor, c, "recorded", detail=f"{channel} {kind} promised {promised.isoformat()}")
    audit.record(s, actor, Action.COMPLAINT_RECORD.value, object_type="complaint", object_id=str(c.id),
                 fields=["content"], detail=f"file {ref.file_no}")
    return c


def _load(s: Session, actor: Actor, complaint_id: int, action: Action, *, lock: bool = False) -> tuple[Complaint, CustomerFile]:
    q = select(Complaint).where(Complaint.id == complaint_id)
    c = s.scalar(q.with_for_update() if lock else q)
    if c is None:
        raise NotFound("no such complaint")
    f = s.get(CustomerFile, c.customer_id)
    if not can(actor, action, owner_id=f.owner_id, unit_path=f.unit_path):
        raise PermissionDenied(action, str(c.id))
    return c, f


def take_step(s: Session, vault: Vault, actor: Actor, complaint_id: int, step: str, form: dict,
              *, today: date | None = None) -> Complaint:
    """The complaint's next step; refused (InvalidInput on ``step``) when it is not the one it waits for."""
    today = today or programme_today()
    c, f = _load(s, actor, complaint_id, Action.COMPLAINT_WORK, lock=True)
    if NEXT_STEP.get(c.status) != step:
        raise InvalidInput({"step": "This complaint is not waiting for that step (someone may have just taken it)."})
    errors: dict[str, str] = {}
    now = clock.now()
    if step == "investigate":
        passed_to = members.text_field(form, "passed_to", errors, limit=100)
        finding = members.text_field(form, "finding", errors)
        cause = members.choice(form, "cause", CAUSES, errors, "Choose a cause.")
        responsible = members.text_field(form, "responsible", errors, limit=100)
        if errors:
            raise InvalidInput(errors)
        c.status, c.cause, c.passed_to, c.responsible = "investigated", cause, passed_to, responsible
        _step(s, vault, actor, c, "investigated", detail=f"cause {cause}; to {passed_to}; responsible {responsible}",
              note=finding)
    elif step == "propose":
        resolution = members.text_field(form, "resolution", errors)
        if errors:
            raise InvalidInput(errors)
        c.status = "proposed"
        _step(s, vault, actor, c, "proposed", note=resolution)
    elif step == "tell":
        how = members.choice(form, "how", HOW_TOLD, errors, "Choose how the member was told.")
        reply = members.text_field(form, "reply", errors)
        if errors:
            raise InvalidInput(errors)
        c.status = "told"
        _step(s, vault, actor, c, "told", detail=how, note=reply)
        if how in ("sms", "email"):
            # The reply goes out through the outbox, written in this transaction (the text
            # encrypted; the channel is the member's preferred one with consent for service).
            from ..messages import outbox
            outbox.enqueue(s, customer_id=f.id, kind="complaint_reply", purpose="service",
                           context={"complaint_no": str(c.id)}, text=reply, vault=vault, actor=actor,
                           reference=f"complaint:{c.id}:{int(now.timestamp())}")
    else:  # satisfaction
        verdict = members.choice(form, "verdict", ("satisfied", "not_satisfied"), errors,
                                 "Choose satisfied or not satisfied.")
        note = members.text_field(form, "note", errors, required=verdict == "not_satisfied")
        promised = _promised(form, errors, today) if verdict == "not_satisfied" else None
        if errors:
            raise InvalidInput(errors)
        _step(s, vault, actor, c, "satisfaction", detail=verdict, note=note)
        if verdict == "satisfied":
            c.status, c.closed_at = "closed", now
            c.days_to_close = (programme_date(now) - programme_date(c.recorded_at)).days
            _step(s, vault, actor, c, "closed")
        else:
            c.status, c.promised_on, c.reopen_count = "reopened", promised, c.reopen_count + 1
            _step(s, vault, actor, c, "reopened", detail=f"promised {promised.isoformat()}")
    c.updated_at = now
    s.flush()
    audit.record(s, actor, Action.COMPLAINT_WORK.value, object_type="complaint", object_id=str(c.id),
                 detail=f"{step} -> {c.status} (file {f.file_no})")
    return c


# ---------------------------------------------------------------- reading

@dataclass
class QueueRow:
    id: int
    file_no: str
    tier: str
    channel: str
    kind: str
    status: str
    promised_on: date
    recorded_at: datetime
    reopen_count: int
    priority: bool
    overdue: bool


def _queue(scope: ScopeArms, state: str, by_customer: bool):
    """The queue's statement for one scope shape, state and filter: the rows' columns only (no
    complaint entities), the scope's values, today and the limit as bound parameters. (The IN
    lists as literal()s: an expanding one cannot be rendered beside a required parameter.)"""
    untold = [literal(x) for x in UNTOLD]
    priority = case((Membership.tier.in_([literal(t) for t in PRIORITY_TIERS]), 0), else_=1)
    q = (select(Complaint.id, CustomerFile.file_no, Membership.tier, Complaint.channel, Complaint.kind,
                Complaint.status, Complaint.promised_on, Complaint.recorded_at, Complaint.reopen_count)
         .join(CustomerFile, CustomerFile.id == Complaint.customer_id)
         .outerjoin(Membership, Membership.customer_id == Complaint.customer_id)
         .where(scope.any()))
    if state == "open":
        q = q.where(Complaint.status != "closed")
    elif state == "closed":
        q = q.where(Complaint.status == "closed")
    elif state == "overdue":
        q = q.where(Complaint.status.in_(untold), Complaint.promised_on < bindparam("today", required=True))
    if by_customer:
        q = q.where(Complaint.customer_id == bindparam("customer_id", required=True))
    return q.order_by(priority, Complaint.promised_on, Complaint.id).limit(bindparam("limit", required=True))


# Built once per scope shape, state and filter (policy.scoped), run on the driver.
_QUEUE = Scoped(Action.COMPLAINT_VIEW, _queue)


def queue(s: Session, actor: Actor, *, state: str = "open", today: date | None = None,
          customer_id: uuid.UUID | None = None, limit: int = 200) -> list[QueueRow]:
    """Complaints in the actor's scope: gold and platinum first, then by promised date. Audited."""
    today = today or programme_today()
    state = state if state in ("open", "closed", "overdue") else "all"
    params = {"today": today, "limit": limit}
    if customer_id is not None:
        params["customer_id"] = customer_id
    rows = _QUEUE.all(s.connection(), actor, params, variant=(state, customer_id is not None))
    audit.record(s, actor, Action.COMPLAINT_VIEW.value, object_type="list", object_id="complaints",
                 detail=f"{state}: {len(rows)} rows")
    return [QueueRow(cid, file_no, tier or "", channel, kind, status, promised_on, recorded_at, reopen_count,
                     (tier or "") in PRIORITY_TIERS, status in UNTOLD and promised_on < today)
            for cid, file_no, tier, channel, kind, status, promised_on, recorded_at, reopen_count in rows]


def _counted(scope: ScopeArms, state: str):
    # (The IN list as literal()s: an expanding one cannot be rendered beside a required parameter.)
    where = [Complaint.status != "closed"] if state == "open" else [
        Complaint.status.in_([literal(x) for x in UNTOLD]), Complaint.promised_on < bindparam("today", required=True)]
    return (select(func.count()).select_from(Complaint).join(CustomerFile, CustomerFile.id == Complaint.customer_id)
            .where(scope.any(), *where))


# The home pages' figures: prebuilt per scope shape (policy.scoped), run on the driver.
_OPEN = Scoped(Action.COMPLAINT_VIEW, lambda scope: _counted(scope, "open"))
_OVERDUE = Scoped(Action.COMPLAINT_VIEW, lambda scope: _counted(scope, "overdue"))


def overdue_count(s: Session, actor: Actor, today: date) -> int:
    return int(_OVERDUE.scalar(s.connection(), actor, {"today": today}) or 0)


def open_count(s: Session, actor: Actor) -> int:
    return int(_OPEN.scalar(s.connection(), actor) or 0)


@dataclass
class StepView:
    step: str
    detail: str
    note: str
    by: str
    at: datetime


@dataclass
class ComplaintView:
    id: int
    customer_id: uuid.UUID
    file_no: str
    tier: str
    channel: str
    kind: str
    content: str
    status: str
    promised_on: date
    overdue: bool
    cause: str | None
    passed_to: str
    responsible: str
    reopen_count: int
    recorded_at: datetime
    closed_at: datetime | None
    next_step: str | None
    history: list[StepView] = field(default_factory=list)


def view_complaint(s: Session, vault: Vault, actor: Actor, complaint_id: int, *,
                   today: date | None = None) -> ComplaintView:
    """Authorise, audit, then decrypt the content and the steps' notes."""
    today = today or programme_today()
    c, f = _load(s, actor, complaint_id, Action.COMPLAINT_VIEW)
    audit.record(s, actor, Action.COMPLAINT_VIEW.value, object_type="complaint", object_id=str(c.id),
                 fields=["content", "notes"], detail=f"file {f.file_no}")
    steps = list(s.scalars(select(ComplaintStep).where(ComplaintStep.complaint_id == c.id).order_by(ComplaintStep.id)))
    names = dict(s.execute(select(User.id, User.username).where(User.id.in_({x.by_id for x in steps}))).all())
    tier = s.scalar(select(Membership.tier).where(Membership.customer_id == c.customer_id)) or ""
    return ComplaintView(
        id=c.id, customer_id=c.customer_id, file_no=f.file_no, tier=tier, channel=c.channel, kind=c.kind,
        content=members.unseal(vault, TABLE, "content", c.id, c.content_ct), status=c.status,
        promised_on=c.promised_on, overdue=c.status in UNTOLD and c.promised_on < today, cause=c.cause,
        passed_to=c.passed_to, responsible=c.responsible, reopen_count=c.reopen_count,
        recorded_at=c.recorded_at, closed_at=c.closed_at, next_step=NEXT_STEP.get(c.status),
        history=[StepView(x.step, x.detail, members.unseal(vault, STEP_TABLE, "note", x.id, x.note_ct),
                          names.get(x.by_id, "?"), x.at) for x in steps])


def may_work(actor: Actor, view: ComplaintView, s: Session) -> bool:
    f = s.get(CustomerFile, view.customer_id)
    return can(actor, Action.COMPLAINT_WORK, owner_id=f.owner_id, unit_path=f.unit_path)
