"""Messages to members: a file's consent and contact preferences, the outbox, the monthly care
batch (previewed, then sent), and the member's own opt-out page (public: the token decides)."""
from __future__ import annotations

import re
from typing import Annotated
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..audit.deferred import read_then_audit
from ..consent import service as consent
from ..customers.service import InvalidInput, open_for
from ..membership.rules import programme_today
from ..messages import contact, listing, occasions
from ..messages.pages import consent_page
from ..messages.rules import rules_at
from ..messages.templates import KINDS, LANGUAGES
from ..policy import Action
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
MONTH_RE = re.compile(r"20\d\d-(0[1-9]|1[0-2])")


def _t(errors: dict[str, str]) -> dict[str, str]:
    return {k: i18n.gettext(v) for k, v in errors.items()}


def _consent(request: Request, file_id: UUID, *, form=None, errors=None, status=200) -> Response:
    actor = current_actor(request)
    st = request.app.state
    with read_then_audit(st.db) as s:  # the view is audited before the e-mail address is decrypted
        page = consent_page(s, st.vault, actor, file_id)
    return render(request, "messages/consent.html", fragment="messages/_consent.html", page=page,
                  form=form or {}, errors=errors or {}, status=status, channels=consent.CHANNELS,
                  purposes=consent.PURPOSES, methods=consent.METHODS, collected=consent.COLLECTED,
                  languages=LANGUAGES)


@get("/customers/{file_id:uuid}/consent", opt={"action": Action.MESSAGES_CONSENT}, sync_to_thread=True)
def view_consent(request: Request, file_id: UUID) -> Response:
    return _consent(request, file_id)


@post("/customers/{file_id:uuid}/consent", opt={"action": Action.MESSAGES_CONSENT}, sync_to_thread=True)
def record_consent(request: Request, file_id: UUID, data: Form) -> Response:
    actor = current_actor(request)
    collected = [c for c in consent.COLLECTED if data.get(f"collected_{c}")]
    try:
        with request.app.state.db.write() as s:
            f, _ = open_for(s, actor, file_id, Action.MESSAGES_CONSENT)
            consent.record(s, actor, f.id, channel=data.get("channel", ""), purpose=data.get("purpose", ""),
                           given=data.get("given") == "yes", method=data.get("method", ""),
                           collected=collected, note=data.get("note", "")[:600])
    except InvalidInput as exc:
        return _consent(request, file_id, form=dict(data), errors=_t(exc.errors), status=400)
    return Redirect(path=f"/customers/{file_id}/consent", status_code=303)


@post("/customers/{file_id:uuid}/contact", opt={"action": Action.MESSAGES_CONSENT}, sync_to_thread=True)
def save_contact(request: Request, file_id: UUID, data: Form) -> Response:
    actor = current_actor(request)
    st = request.app.state
    try:
        with st.db.write() as s:
            f, _ = open_for(s, actor, file_id, Action.MESSAGES_CONSENT)
            contact.set_contact(s, st.vault, actor, f, email=data.get("email", "")[:300],
                                language=data.get("language", ""), channel=data.get("channel", ""))
    except InvalidInput as exc:
        return _consent(request, file_id, form=dict(data), errors=_t(exc.errors), status=400)
    return Redirect(path=f"/customers/{file_id}/consent", status_code=303)


@get("/outbox", opt={"action": Action.MESSAGES_OUTBOX}, sync_to_thread=True)
def view_outbox(request: Request, status: str = "", before: int | None = None) -> Response:
    actor = current_actor(request)
    st = request.app.state
    with read_then_audit(st.db) as s:  # the list is audited before addresses are decrypted (to be masked)
        counts = listing.counts(s, actor)
        rows = listing.list_outbox(s, st.vault, actor, status=status, before_id=before,
                                   limit=st.settings.page_size)
        rules = rules_at(s)
    return render(request, "messages/outbox.html", fragment="messages/_outbox_rows.html", rows=rows,
                  counts=counts, shown=status if status in listing.STATUSES else "", statuses=listing.STATUSES,
                  rules=rules, kinds=KINDS, page_size=st.settings.page_size)


def _care_form(data) -> tuple[dict, dict]:
    form = {"month": (data.get("month") or "").strip(), "offer_zh": (data.get("offer_zh") or "").strip(),
            "offer_en": (data.get("offer_en") or "").strip()}
    errors = {}
    if not MONTH_RE.fullmatch(form["month"]):
        errors["month"] = "Enter the month as YYYY-MM."
    for k in ("offer_zh", "offer_en"):
        if not 2 <= len(form[k]) <= 300:
            errors[k] = "Write the offer (2 to 300 characters)."
    return form, errors


@get("/messages/care", opt={"action": Action.MESSAGES_CARE}, sync_to_thread=True)
def care_batch(request: Request, month: str = "", offer_zh: str = "", offer_en: str = "") -> Response:
    """The form; once filled in, the preview: who gets it (masked), who does not, what it says."""
    if not (month or offer_zh or offer_en):
        return render(request, "messages/care.html", form={"month": programme_today().strftime("%Y-%m")},
                      errors={}, batch=None)
    form, errors = _care_form({"month": month, "offer_zh": offer_zh, "offer_en": offer_en})
    if errors:
        return render(request, "messages/care.html", form=form, errors=_t(errors), batch=None, status=400)
    actor = current_actor(request)
    st = request.app.state
    with read_then_audit(st.db) as s:
        batch = occasions.preview_care(s, st.vault, actor, **form)
    return render(request, "messages/care.html", form=form, errors={}, batch=batch)


@post("/messages/care", opt={"action": Action.MESSAGES_CARE}, sync_to_thread=True)
def send_care(request: Request, data: Form) -> Response:
    form, errors = _care_form(data)
    if errors:
        return render(request, "messages/care.html", form=form, errors=_t(errors), batch=None, status=400)
    actor = current_actor(request)
    with request.app.state.db.write() as s:
        occasions.send_care(s, actor, **form)
    return Redirect(path="/outbox?status=pending", status_code=303)


# ---------------------------------------------------------------- the member's opt-out (public)
# Public by design: members have no account. The token in the link is the message id signed
# with the app secret (messages/outbox.py); a wrong token changes nothing and reveals nothing.
# Withdrawing is a POST with the form's CSRF token; the GET only shows the question.
PUBLIC = {"public": True}


@get("/optout/{token:str}", opt=PUBLIC, sync_to_thread=True)
def opt_out_form(request: Request, token: str) -> Response:
    return render(request, "messages/optout.html", token=token[:80], done=False)


@post("/optout/{token:str}", opt=PUBLIC, sync_to_thread=True)
def opt_out(request: Request, token: str, data: Form) -> Response:
    st = request.app.state
    with st.db.write() as s:
        msg = contact.opt_out(s, st.vault, token[:80], everything=data.get("everything") == "yes")
    if msg is None:
        return render(request, "messages/optout.html", token=token[:80], done=False, invalid=True, status=404)
    return Redirect(path="/opted-out", status_code=303)


@get("/opted-out", opt=PUBLIC)
async def opt_out_done(request: Request) -> Response:
    return render(request, "messages/optout.html", token="", done=True)


ROUTES = [view_consent, record_consent, save_contact, view_outbox, care_batch, send_care, opt_out_done,
          opt_out_form, opt_out]
