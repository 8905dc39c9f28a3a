"""The catalogue and redemption page: look up a card's redeemable points, redeem an item for them."""
from __future__ import annotations

from uuid import UUID

from litestar import Request, Response, get, post

from .. import i18n
from ..customers.rules import InvalidField
from ..customers.service import InvalidInput, NotFound
from ..membership import cards, points, programme
from ..membership.cards import CardNotYours
from ..membership.rules import programme_today, redemption_open
from ..policy import Action
from .card_refusal import refuse_card_quietly
from .membership import Form, _card_step, field_errors, whole_number
from .rendering import render
from .security import current_actor

_ = i18n.gettext


def _redeem_page(request: Request, *, form: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                 summary=None, outcome=None, status: int = 200) -> Response:
    with request.app.state.db.read() as s:
        settings = programme.current_settings(s)
    today = programme_today()
    return render(request, "membership/redeem.html", status=status, settings=settings, form=form or {},
                  errors=errors or {}, summary=summary, outcome=outcome, today=today,
                  redemption_open=redemption_open(today, settings))


@get("/redeem", opt={"action": Action.MEMBER_REDEEM}, sync_to_thread=True)
def redemption_page(request: Request) -> Response:
    return _redeem_page(request)


@post("/redeem", opt={"action": Action.MEMBER_REDEEM}, sync_to_thread=True, status_code=200)
def redeem(request: Request, data: Form) -> Response:
    """"lookup" shows the card's redeemable points (an audited look-up); "redeem" takes them."""
    actor = current_actor(request)
    st = request.app.state
    form = {"card": data.get("card", ""), "item": data.get("item", "")}
    summary = outcome = None
    try:
        with st.db.write() as s:
            if data.get("step") == "redeem":
                outcome = points.redeem_points(s, actor, form["card"], form["item"],
                                               form_key=data.get("form_key"))
            else:
                summary = cards.lookup_card(s, st.vault, actor, form["card"], action=Action.MEMBER_REDEEM)
    except NotFound:
        errors = {"card": _("No card has this number.")}
    except CardNotYours as exc:
        errors = {"card": refuse_card_quietly(request, exc)}
    except (InvalidInput, InvalidField) as exc:
        errors = field_errors(exc, ("card", "item"), {"card_number": "card", "points": "item"})
    else:
        number = outcome.card_number if outcome else summary.number
        return _redeem_page(request, form={**form, "card": number}, summary=summary, outcome=outcome)
    return _redeem_page(request, form=form, errors=errors, status=400)


@post("/customers/{file_id:uuid}/points/cash", opt={"action": Action.MEMBER_REDEEM}, sync_to_thread=True)
def exchange_for_cash(request: Request, file_id: UUID, data: Form) -> Response:
    """Gold and above exchange points for cash at their tier's rate (seed 001), on the file."""
    def work(s, a, v, n):
        points.exchange_for_cash(s, a, n, whole_number(data.get("points", ""), "points"),
                                 form_key=data.get("form_key"))
    return _card_step(request, file_id, data, "cash", Action.MEMBER_REDEEM, ("points",), work)


ROUTES = [redemption_page, redeem, exchange_for_cash]
