"""Reports: each report's figures against the hand-computed book in tests/report_fixture.py, the
policy's scope (a salesperson's figures are her clients' only; an admin gets none), small-group
suppression, exports (CSV and XLSX, neutralised and audited), sending the monthly report upward."""
from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from portal import clock
from portal.audit import service as audit
from portal.audit.models import AuditEvent
from portal.customers.models import CustomerFile
from portal.reports import audit_stats, cards, classes, exporting, monthly, overview
from portal.reports.filters import Period, ReportFilter, UnitChoice, month_period, parse_filter, units_in_scope
from portal.reports.model import Chart, Col, Report, Table

from .browser import post, signed_in
from .report_fixture import at, build_book

YEAR_2025 = ReportFilter(Period("year", date(2025, 1, 1), date(2025, 12, 31)))


@pytest.fixture
def book(db, story):
    return build_book(db, story)


def rows_by(table, key):
    return {r[key]: r for r in table.rows}


def run(db, story, user, fn, f=YEAR_2025):
    with db.read() as s:
        return fn(s, story.actor(db, user), f)


def unit(db, story, user, code):
    with db.read() as s:
        return next(u for u in units_in_scope(s, story.actor(db, user)) if u.code == code)


# ---------------------------------------------------------------- programme overview

def test_overview_figures_for_graces_region(db, story, book):
    rep = run(db, story, "grace", overview.overview)
    members = rows_by(rep.table("members"), "tier")
    assert members["regular"]["active"] == 4
    assert members["gold"]["active"] is None and members["silver"]["active"] is None  # one each: suppressed
    assert members["platinum"]["active"] == 0
    joined = rows_by(rep.table("joined"), "month")
    assert joined["2025-01"]["single_purchase"] == 1 and joined["2025-02"]["cumulative"] == 1
    assert joined["2025-04"]["application"] == 2 and joined["2025-07"]["total"] == 1
    assert sum(r["total"] for r in rep.table("joined").rows) == 5  # A3 joined in 2024
    moves = {(r["month"], r["direction"], r["cause"]): r["count"] for r in rep.table("moves").rows}
    assert moves == {("2025-03", "Upgrade", "upgrade"): 1, ("2025-08", "Upgrade", "upgrade"): 1,
                     ("2025-10", "Downgrade", "downgrade"): 1}
    spend = rows_by(rep.table("spend"), "tier")
    assert spend["regular"] == {"tier": "regular", "members": 4, "purchases": 4, "spend": 1_350_000,
                                "per_member": 337_500, "frequency": 100}
    assert spend["gold"]["spend"] is None  # A1 alone
    month = rows_by(rep.table("spend_month"), "month")
    assert month["2025-04"]["spend"] == 900_000 and month["2025-07"]["spend"] == 1_250_000
    assert month["2025-08"]["spend"] is None and month["2025-01"]["spend"] is None  # two buyers, one buyer
    points = {r["figure"]: r["value"] for r in rep.table("points").rows}
    assert points == {"Points earned": 20_500, "Points redeemed": 1_000, "Points expired": 0,
                      "Points outstanding (now)": 19_500, "Redemption rate": 49, "Referred members who joined": 0}
    money = {r["figure"]: r["value"] for r in rep.table("liability").rows}
    assert money == {"Points liability at the redemption rate (now)": 195_000, "Stored value outstanding (now)": 50_000}


def test_a_salespersons_figures_are_her_own_clients_only(db, story, book):
    rep = run(db, story, "alice", overview.overview)
    points = {r["figure"]: r["value"] for r in rep.table("points").rows}
    assert points["Points earned"] == 19_000  # not bob's client's 1,500, nor charlie's or frank's
    assert points["Points outstanding (now)"] == 18_000
    assert sum(r["total"] for r in rep.table("joined").rows) == 2  # A1, A2
    charlie = run(db, story, "charlie", overview.overview)
    assert rows_by(charlie.table("joined"), "month")["2025-04"]["total"] == 2
    assert {r["figure"]: r["value"] for r in charlie.table("points").rows}["Points earned"] == 0


def test_an_admin_gets_no_customer_figures(db, story, book, client):
    rep = run(db, story, "erin", overview.overview)
    assert all(r["active"] in (0, None) for r in rep.table("members").rows)
    assert {r["figure"]: r["value"] for r in rep.table("points").rows}["Points earned"] == 0
    signed_in(client, "erin")
    for path in ("/reports", "/reports/overview", "/reports/classes", "/reports/monthly", "/reports/cards"):
        assert client.get(path).status_code == 403, path
    assert 'href="/reports' not in client.get("/").text


# ---------------------------------------------------------------- classes and RFM

def test_classes_and_rfm_for_graces_region(db, story, book):
    rep = run(db, story, "grace", classes.classes)
    table = rows_by(rep.table("classes"), "class")
    assert table["A"]["members"] is None and table["B"]["members"] is None and table["C"]["members"] is None
    assert {k: table["D"][k] for k in ("members", "spend", "per_member", "purchases")} == \
        {"members": 3, "spend": 650_000, "per_member": 108_333, "purchases": 3}
    file_no = {}
    with db.read() as s:
        for key, owner, i in (("A1", "alice", 0), ("A2", "alice", 1), ("A3", "alice", 2)):
            file_no[key] = s.get(CustomerFile, __import__("uuid").UUID(story.files[owner][i])).file_no
    lists = rep.extra["lists"]
    assert [no for _id, no in lists["A"]] == [file_no["A1"]]
    assert [no for _id, no in lists["B"]] == [file_no["A2"]]
    assert [no for _id, no in lists["C"]] == [file_no["A3"]]
    with db.read() as s:  # the hook for a follow-up visit schedule: (membership, class) in the same scope
        got = sorted(c for _mid, c in s.execute(classes.member_classes(s, story.actor(db, "grace"), YEAR_2025)))
    assert got == ["A", "B", "C", "D", "D", "D"]
    rfm = rows_by(rep.table("rfm"), "segment")
    assert rfm["Champions"]["members"] is None  # A1 alone
    assert rfm["Others"]["members"] == 5 and rfm["Others"]["spend"] == 3_750_000


# ---------------------------------------------------------------- monthly unit report

def test_monthly_report_of_bobs_team_for_july(db, story, book):
    f = ReportFilter(month_period(2025, 7), unit(db, story, "bob", "755A"))
    rep = run(db, story, "bob", monthly.monthly, f)
    figures = {r["figure"]: r["value"] for r in rep.table("summary").rows}
    assert figures == {"Active members": 4, "New members": 1, "New cards": 1, "Replacement cards": 0,
                       "Upgrades": 0, "Downgrades": 0, "Purchases": 3, "Buying members": 3,
                       "Spend": 1_250_000, "Points earned": 20_500, "Points redeemed": 1_000}
    assert rep.table("units").rows == [{"unit": "755A", "name": "深圳一组", "members": 3, "purchases": 3,
                                        "spend": 1_250_000}]
    products = rep.table("products").rows
    assert [p["product"] for p in products] == ["剑南春", "茅台"]
    assert all(p["paid"] is None for p in products)  # one and two buyers: suppressed


def test_a_leader_sends_the_monthly_report_upward_frozen_and_signed(client, db, story, book):
    signed_in(client, "bob")
    r = post(client, "/reports/monthly/send", {"unit": "755A", "month": "2025-07"}, from_page="/reports/monthly")
    assert r.status_code == 303, r.text[:300]
    location = r.headers["location"]
    with db.read() as s:
        row = s.scalars(select(monthly.SentMonthlyReport)).one()
    assert row.sent_by_username == "bob" and monthly.verify(row) and '"Spend"' in row.body
    again = post(client, "/reports/monthly/send", {"unit": "755A", "month": "2025-07"}, from_page="/reports/monthly")
    assert again.status_code == 400
    # A new purchase afterwards does not change what was sent.
    with db.write() as s:
        from portal.membership.models import Purchase
        p = s.scalars(select(Purchase).where(Purchase.purchased_on == date(2025, 7, 15))).one()
        s.add(Purchase(receipt_no="LATE-1", membership_id=p.membership_id, account_id=p.account_id,
                       purchased_on=date(2025, 7, 30), payment_method="cash", list_total_fen=1, discount_total_fen=0,
                       paid_total_fen=1, rate_per_mille=1000, discount_reason="none", created_at=clock.now()))
    signed_in(client, "grace")  # the leader above reads it
    page = client.get(location)
    assert page.status_code == 200 and "bob" in page.text and row.sha256 in page.text and "1,250,000" not in page.text
    assert "¥12,500.00" in page.text
    for user in ("henry", "alice"):  # another region's leader; a salesperson
        signed_in(client, user)
        assert client.get(location).status_code == 403
    signed_in(client, "charlie")
    r = post(client, "/reports/monthly/send", {"unit": "755B", "month": "2025-07"}, from_page="/reports/monthly")
    assert r.status_code == 403


def test_only_a_month_that_is_over_can_be_sent(client, db, story, book):
    signed_in(client, "bob")
    r = post(client, "/reports/monthly/send", {"unit": "755A", "month": f"{clock.now():%Y-%m}"},
             from_page="/reports/monthly")
    assert r.status_code == 400 and 'data-error="month"' in r.text


def test_the_cli_writes_the_monthly_report_as_xlsx(settings, db, story, book, tmp_path):
    from click.testing import CliRunner

    from portal.cli import main
    out = tmp_path / "755A-2025-07.xlsx"
    env = {"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file)}
    result = CliRunner().invoke(main, ["reports", "monthly", "--unit", "755A", "--month", "2025-07",
                                       "--format", "xlsx", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    ws = load_workbook(out)["The month's figures"]
    values = {ws.cell(row=i, column=1).value: ws.cell(row=i, column=2) for i in range(2, ws.max_row + 1)}
    assert values["Spend"].value == 12_500 and "¥" in values["Spend"].number_format
    assert values["Purchases"].value == 3
    csv_out = CliRunner().invoke(main, ["reports", "monthly", "--unit", "755A", "--month", "2025-13"], env=env)
    assert csv_out.exit_code == 2


# ---------------------------------------------------------------- card tracking

def test_card_tracking_table_and_issue_list(db, story, book):
    rep = run(db, story, "grace", cards.cards)
    months = rows_by(rep.table("months"), "month")
    totals = {k: sum(r[k] for r in rep.table("months").rows) for k in cards.KINDS}  # noqa
    assert totals == {"issued": 5, "replaced": 1, "lost": 1, "frozen": 1, "expired": 1, "renewed": 0, "cancelled": 0}
    assert months["2025-04"]["issued"] == 2 and months["2025-11"]["expired"] == 1 and months["2025-09"]["lost"] == 1
    units = rows_by(rep.table("units"), "unit")
    assert units["755A"]["issued"] == 3 and units["755B"]["issued"] == 2 and units["755B"]["frozen"] == 1
    issued = {r["card"]: r for r in rep.table("issued").rows}
    assert set(issued) == {"T901", "T902", "T999", "T904", "T905", "T906"}
    assert issued["T999"]["issued_by"] == "alice" and issued["T999"]["replaces"] == "T902"
    assert issued["T904"]["issued_by"] == "charlie" and issued["T906"]["issued_by"] == "bob"


# ---------------------------------------------------------------- audit analytics

def test_audit_analytics_counts_and_unusual_activity(db, story):
    def rec(user, day, hour, action, outcome="allowed", obj=""):
        clock.set_now(at(day, hour))
        with db.write() as s:
            audit.record(s, story.actor(db, user), action, outcome, object_type="customer", object_id=obj)
    try:
        for i in range(12):  # charlie, a weekday in the last week of December: 12 distinct files
            rec("charlie", date(2025, 12, 29), 10, "customer.view", obj=f"755 9{i:04d}")
        rec("alice", date(2025, 12, 3), 23, "customer.view", obj="755 00001")  # outside working hours
        for _ in range(5):
            rec("frank", date(2025, 12, 4), 11, "customer.view", "denied", obj="755 00001")
        rec("bob", date(2025, 12, 5), 9, "access.approve", obj="755 00002")
        rec("alice", date(2025, 12, 5), 9, "customer.export")
    finally:
        clock.set_now(None)
    with db.read() as s:
        rep = audit_stats.audit_stats(s, ReportFilter(month_period(2025, 12)))
    days = rows_by(rep.table("days"), "day")
    assert days["2025-12-29"]["views"] == 12 and days["2025-12-04"]["denials"] == 5
    assert days["2025-12-05"]["grants"] == 1 and days["2025-12-05"]["exports"] == 1
    assert days["2025-12-03"]["views"] == 1  # 23:00 in Shanghai is 15:00 UTC: the same day
    users = rows_by(rep.table("users"), "user")
    assert users["charlie"]["views"] == 12 and users["frank"]["denials"] == 5 and users["frank"]["views"] == 0
    units = rows_by(rep.table("units"), "unit")
    assert units["755B"]["views"] == 12 and units["010A"]["denials"] == 5
    unusual = {(r["user"], r["kind"]): r for r in rep.table("unusual").rows}
    assert set(unusual) == {("charlie", "Many more files than usual"), ("alice", "Views outside working hours"),
                            ("frank", "Many refusals")}
    assert unusual[("frank", "Many refusals")]["_link"].startswith("/audit?actor=frank&outcome=denied")


# ---------------------------------------------------------------- pages, exports, filters

def test_report_pages_answer_each_allowed_role_with_charts_and_tables(client, db, story, book):
    signed_in(client, "bob")
    for path in ("/reports", "/reports/overview?period=year&year=2025", "/reports/classes?period=year&year=2025",
                 "/reports/monthly?period=month&month=2025-07&unit=755A", "/reports/cards?period=year&year=2025"):
        r = client.get(path)
        assert r.status_code == 200, path
    assert 'type="application/json" data-chart="chart-units"' in r.text.replace("chart-months", "chart-units")
    assert "<script>" not in r.text
    signed_in(client, "dave")
    assert client.get("/reports/audit").status_code == 200
    assert client.get("/reports/overview").status_code == 403
    signed_in(client, "alice")
    assert client.get("/reports/audit").status_code == 403
    assert client.get("/reports/overview?unit=755B").status_code == 400  # not a unit she may pick
    assert client.get("/reports/overview?period=month&month=2025-13").status_code == 400


def test_a_report_exports_as_xlsx_with_formats_and_is_audited(client, db, story, book):
    signed_in(client, "grace")
    r = post(client, "/reports/export/overview", {"format": "xlsx", "period": "year", "year": "2025"},
             from_page="/reports/overview")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    wb = load_workbook(io.BytesIO(r.content))
    ws = wb.worksheets[4]  # the tables in the page's order: members, tiers over time, joined, moves, spend per tier, ...
    assert len(wb.worksheets) == 8 and ws.max_column == 6 and ws.max_row == 5  # a header and four tiers
    by_spend = {row[3].value: row for row in ws.iter_rows(min_row=2)}
    regular = by_spend[13_500]
    assert regular[1].value == 4 and regular[3].number_format == exporting.YUAN_FORMAT
    assert regular[4].value == 3_375 and regular[5].value == 1.0
    assert [row[3].value for row in ws.iter_rows(min_row=2)].count("<3") == 2  # gold, silver: one member each
    with db.read() as s:
        e = s.scalars(select(AuditEvent).where(AuditEvent.action == "report.export")).one()
    assert e.actor_username == "grace" and "format=xlsx" in e.detail and "sha256=" in e.detail
    csv = post(client, "/reports/export/cards", {"format": "csv", "period": "year", "year": "2025"},
               from_page="/reports/cards")
    assert csv.status_code == 200 and "T999" in csv.text
    assert client.get("/reports/export/cards").status_code == 405  # an export is never a GET


def test_exports_neutralise_formulas_and_write_dates(db):
    rep = Report("t", "T", tables=[Table("x", "X", [Col("name", "Name", "text"), Col("on", "On", "date"),
                                                    Col("fen", "Money", "fen")],
                                         [{"name": "=HYPERLINK(\"http://x\")", "on": date(2025, 1, 2), "fen": 12_345}])])
    text = exporting.to_csv(rep, str).decode("utf-8-sig")
    assert "'=HYPERLINK" in text and "123.45" in text
    ws = load_workbook(io.BytesIO(exporting.to_xlsx(rep, str)))["X"]
    assert ws["A2"].value.startswith("'=") and ws["A2"].data_type == "s"
    assert ws["B2"].number_format == exporting.DATE_FORMAT and ws["B2"].value.date() == date(2025, 1, 2)
    assert ws["C2"].value == 123.45


def test_filters_parse_periods_and_refuse_bad_input():
    today = date(2026, 5, 20)
    f, errors = parse_filter({"period": "quarter", "quarter": "2026-Q2"}, today, [])
    assert not errors and (f.period.start, f.period.end) == (date(2026, 4, 1), date(2026, 6, 30))
    f, errors = parse_filter({"period": "custom", "from": "2026-02-01", "to": "2026-01-01"}, today, [])
    assert "to" in errors
    f, errors = parse_filter({"tier": "diamond", "category": "soe"}, today, [])
    assert "tier" in errors and f.category == "soe" and f.period.start == date(2026, 1, 1)
    u = UnitChoice("755A", "深圳一组", "/1/2/3/", 2)
    f, errors = parse_filter({"unit": "755A"}, today, [u])
    assert f.unit == u and not errors
