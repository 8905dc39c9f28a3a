"""The credit terms: an administrator saves a new version from a date with a reason (never editing
one), every bad figure is named at its field, and a sale follows the version in force that day."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from portal.audit.models import AuditEvent
from portal.credit import terms
from portal.credit.models import CreditTermsVersion
from portal.credit.rules import CreditRefused, CreditTerms
from portal.customers.service import InvalidInput
from portal.policy import PermissionDenied

from .browser import post, signed_in
from .test_credit import grant, sell, shop  # noqa: F401 - the fixture

TODAY = date(2026, 3, 10)  # the shop fixture's day


def save(db, story, user="erin", on=TODAY, reason="more boxes for individual customers", **figures):
    with db.write() as s:
        return terms.save_terms(s, story.actor(db, user), {**_figures(CreditTerms()), **figures},
                                effective_from=on, today=TODAY, reason=reason)


def _figures(t: CreditTerms) -> dict[str, str]:
    return {k: str(getattr(t, k)) for k in terms.BOUNDS}


def test_a_new_version_starts_on_its_day_and_the_old_figures_stay(db, story, shop):
    save(db, story, on=date(2026, 4, 1), individual_boxes="8")
    with db.read() as s:
        assert terms.terms_on(s, date(2026, 3, 31)).individual_boxes == 5  # the seed's default
        assert terms.terms_on(s, date(2026, 4, 1)).individual_boxes == 8
        [row] = terms.history(s)
        assert (row.effective_from, row.reason, row.created_by) == (date(2026, 4, 1),
                                                                    "more boxes for individual customers", "erin")
        audited = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "credit.terms"))
    assert audited == 1
    with pytest.raises(DBAPIError):  # versions are never edited
        with db.write() as s:
            s.execute(text("UPDATE credit_terms_version SET note = 'changed'"))


def test_a_sale_follows_the_terms_in_force_that_day(db, vault, story, shop):
    fid = grant(db, story)
    with pytest.raises(CreditRefused):
        sell(db, vault, story, fid, 6, "CT-1")  # individual: five boxes by default
    save(db, story, individual_boxes="8")  # from today
    sell(db, vault, story, fid, 6, "CT-1")


def test_every_bad_figure_is_named_at_its_field_and_nothing_is_saved(db, story, shop):
    with pytest.raises(InvalidInput) as exc:
        save(db, story, on=date(2026, 3, 9), reason="no", individual_boxes="many", institutional_months="13",
             individual_months="0", individual_days="0", line_leader_fine_permille="1001")
    assert exc.value.errors == {
        "individual_boxes": "Enter a whole number of boxes from 0 to 10,000.",
        "institutional_months": "Enter a whole number of months from 0 to 12.",
        "individual_days": "The account period is at least one day.",
        "line_leader_fine_permille": "Enter a whole number from 0 to 1,000 (per mille).",
        "effective_from": "A new version starts today or later: the past is never rewritten.",
        "reason": "Give a reason (at least 5 characters).",
    }
    save(db, story)
    with pytest.raises(InvalidInput) as exc:
        save(db, story, individual_boxes="9")
    assert exc.value.errors == {"effective_from": "A version already starts on that day: choose another day."}
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(CreditTermsVersion)) == 1


@pytest.mark.parametrize("user", ["alice", "bob", "dave"])
def test_only_the_administrator_changes_the_terms(db, story, shop, user):
    with pytest.raises(PermissionDenied):
        save(db, story, user=user)


def test_erin_saves_terms_on_the_page_and_a_bad_figure_is_refused_at_its_field(client, db, story, shop):
    client.headers["Accept-Language"] = "en"
    signed_in(client, "erin")
    page = client.get("/credit/terms")
    assert page.status_code == 200 and 'name="individual_boxes" value="5"' in page.text
    form = {**_figures(CreditTerms()), "effective_from": "2026-03-20", "reason": "the board raised the limit"}
    bad = post(client, "/credit/terms", {**form, "individual_boxes": "-1"}, from_page="/credit/terms")
    assert bad.status_code == 400 and 'data-error="individual_boxes"' in bad.text
    assert "the board raised the limit" in bad.text  # the form keeps what was typed
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(CreditTermsVersion)) == 0
    ok = post(client, "/credit/terms", {**form, "individual_boxes": "7"}, from_page="/credit/terms")
    assert ok.status_code == 303 and ok.headers["location"] == "/credit/terms"
    page = client.get("/credit/terms")
    assert "the board raised the limit" in page.text and 'data-testid="terms-upcoming"' in page.text
    client.headers["Accept-Language"] = "zh-CN"
    assert "授信条件" in client.get("/credit/terms").text
