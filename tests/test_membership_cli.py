"""`portal purchases import` and `portal jobs daily`, run in-process with click's CliRunner against
the story database (SQLite, or PostgreSQL when the suite runs there)."""
from __future__ import annotations

import codecs
import uuid
from datetime import date, datetime, timezone

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Integer, func, select

from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.cli import main
from portal.customers.models import CustomerFile
from portal.membership import applications, cards, jobs, members, purchases
from portal.membership.models import Membership, PointsEntryRow, Purchase, PurchaseLineRow
from portal.membership.outcomes import PurchaseRequest
from portal.membership.rules import PurchaseLine

HEADER = ("receipt_no,date,card_number,file_no,product,quantity,unit_price,special_price,group_buy,"
          "payment_method")


def at(y, m, d, h=4):
    return datetime(y, m, d, h, tzinfo=timezone.utc)  # noon in Shanghai


@pytest.fixture
def cli_env(settings, monkeypatch):
    monkeypatch.setenv("PORTAL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("PORTAL_KEY_FILE", str(settings.key_file))
    monkeypatch.delenv("PORTAL_DEBUG", raising=False)
    return settings


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def csv_file(tmp_path, *rows: str, name="pos.csv"):
    """As Excel writes "CSV UTF-8": a BOM and CRLF line ends."""
    path = tmp_path / name
    path.write_bytes(codecs.BOM_UTF8 + "\r\n".join((HEADER, *rows, "")).encode("utf-8"))
    return path


def file_no(db, file_id: str) -> str:
    with db.read() as s:
        return s.get(CustomerFile, uuid.UUID(file_id)).file_no


def enrolled(db, story, owner="alice", i=0) -> str:
    with db.write() as s:
        m = members.enrol(s, story.actor(db, owner), uuid.UUID(story.files[owner][i]), cause="application")
        return members.current_card(s, members.primary_account(s, m).id).number


def counts(db) -> tuple[int, int, int]:
    with db.read() as s:
        return (s.scalar(select(func.count()).select_from(Purchase)),
                s.scalar(select(func.count()).select_from(PointsEntryRow)),
                s.scalar(select(func.count()).select_from(AuditEvent)))


# ---------------------------------------------------------------- purchases import

def test_importing_a_pos_export_records_each_receipt_as_alices(cli_env, db, story, clock_at, tmp_path):
    clock_at(at(2026, 3, 10))
    card = enrolled(db, story, "alice", 0)
    newcomer = file_no(db, story.files["alice"][1])
    path = csv_file(
        tmp_path,
        f"P-1,2026-03-01,{card},,茅台 飞天 53度,2,1499.00,0,0,cash",
        f"P-1,2026-03-01,{card},,赠品小酒,1,128.50,1,,cash",        # special price: no points
        f"P-2,2026-03-02,,{newcomer},五粮液,1,680,,,bank_transfer",  # ¥680 in one purchase: joins
        "P-3,2026-03-05,,,红酒,3,99.90,,yes,现金",                   # no card: claimable later
    )
    r = invoke("purchases", "import", str(path), "--as", "alice")
    assert r.exit_code == 0, r.output
    assert "recorded 3 purchase(s) as alice" in r.stdout
    assert "lines:           4" in r.stdout
    assert "points awarded:  2,998" in r.stdout           # 2 x 1,499 at 1 point per yuan
    assert "members joined:  1" in r.stdout
    assert f"joined: {newcomer} (receipt P-2), card 755 " in r.stdout
    assert "without a card:  1" in r.stdout

    alice_id = story.users["alice"]
    with db.read() as s:
        rows = {p.receipt_no: p for p in s.scalars(select(Purchase))}
        assert set(rows) == {"P-1", "P-2", "P-3"}
        assert {p.recorded_by_id for p in rows.values()} == {alice_id}
        assert rows["P-1"].card_number == card and rows["P-1"].points_earned == 2_998
        assert rows["P-1"].list_total_fen == 2 * 149_900 + 12_850
        assert rows["P-1"].purchased_on == date(2026, 3, 1)
        assert rows["P-3"].customer_id is None and rows["P-3"].paid_total_fen == 29_970
        lines = list(s.scalars(select(PurchaseLineRow).where(PurchaseLineRow.purchase_id == rows["P-3"].id)))
        assert [(ln.quantity, ln.unit_price_fen, ln.group_buy) for ln in lines] == [(3, 9_990, True)]
        m = s.scalar(select(Membership).where(Membership.customer_id == uuid.UUID(story.files["alice"][1])))
        assert m is not None and m.join_cause == "single_purchase"
        lot = s.scalar(select(PointsEntryRow).where(PointsEntryRow.ref == "P-1"))
        # The lot opens on the day the points are credited (the import), not on the sale date.
        assert lot.on == date(2026, 3, 10) and lot.expires_on == date(2028, 3, 10)
        actions = [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(12))]
    assert actions[0] == "member.purchase_import" and actions.count("member.purchase") == 3
    # The anonymous sale's points are claimed later by customer service.
    with db.write() as s:
        out = purchases.claim_missed_points(s, story.actor(db, "cathy"), "P-3", card, "customer forgot the card")
    assert out.points_earned == 0  # group-buy lines earn nothing
    # The same file again: every receipt is already recorded.
    again = invoke("purchases", "import", str(path), "--as", "alice")
    assert again.exit_code == 1
    for line, receipt in ((2, "P-1"), (4, "P-2"), (5, "P-3")):
        assert f"line {line}: receipt_no: Receipt {receipt} is already recorded." in again.stderr


def test_a_dry_run_shows_what_would_be_recorded_and_records_nothing(cli_env, db, story, clock_at, tmp_path):
    clock_at(at(2026, 3, 10))
    newcomer = file_no(db, story.files["alice"][2])
    path = csv_file(tmp_path, f"D-1,2026-03-09,,{newcomer},茅台,1,1000,,,cash")
    before = counts(db)
    r = invoke("purchases", "import", str(path), "--as", "alice", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "would record 1 purchase(s) as alice" in r.stdout and "dry run: nothing recorded" in r.stdout
    assert "D-1" in r.stdout and "¥1,000.00" in r.stdout and "joins" in r.stdout
    assert f"would join: {newcomer}" in r.stdout
    assert counts(db) == before
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Membership)) == 0


def test_one_bad_row_records_nothing(cli_env, db, story, clock_at, tmp_path):
    clock_at(at(2026, 3, 10))
    card = enrolled(db, story)
    before = counts(db)
    path = csv_file(
        tmp_path,
        f"B-1,2026-03-01,{card},,茅台,1,1499,,,cash",
        f"B-2,2026-03-01,{card},,茅台,1,12.345,,,cash",
        f"B-3,2026-03-31,{card},,茅台,0,10,maybe,,paypal",
    )
    r = invoke("purchases", "import", str(path), "--as", "alice")
    assert r.exit_code == 1
    assert "line 3: unit_price: '12.345' has more than 2 decimals" in r.stderr
    assert "line 4: date: 2026-03-31 is in the future." in r.stderr
    assert "line 4: quantity: " in r.stderr and "line 4: special_price: " in r.stderr
    assert "line 4: payment_method: " in r.stderr
    assert "nothing recorded: 5 problem(s) in pos.csv" in r.stderr
    assert counts(db) == before


def test_problems_found_in_the_database_are_all_listed_and_nothing_is_recorded(cli_env, db, vault, story,
                                                                               clock_at, tmp_path):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    card = enrolled(db, story)
    lost = enrolled(db, story, "alice", 1)
    with db.write() as s:
        purchases.record_purchase(s, vault, alice, PurchaseRequest(
            receipt_no="OLD-1", lines=(PurchaseLine("茅台", 1, 100),), payment_method="cash", card_number=card))
        cards.report_loss(s, alice, lost, "the customer lost the card")
    path = csv_file(
        tmp_path,
        f"E-1,2026-03-01,{card},,茅台,1,1499,,,cash",             # fine on its own
        f"OLD-1,2026-03-01,{card},,茅台,1,10,,,cash",              # already recorded
        "E-2,2026-03-01,755 09999,,茅台,1,10,,,cash",              # no such card
        "E-3,2026-03-01,,755 09999,茅台,1,10,,,cash",              # no such file
        f"E-4,2026-03-01,{card},{file_no(db, story.files['alice'][2])},茅台,1,10,,,cash",  # not that file's
        f"E-5,2026-03-02,{lost},,茅台,1,10,,,cash",                # refused when recorded: lost card
    )
    before = counts(db)
    r = invoke("purchases", "import", str(path), "--as", "alice")
    assert r.exit_code == 1
    assert "line 3: receipt_no: Receipt OLD-1 is already recorded." in r.stderr
    assert "line 4: card_number: No card 755 09999." in r.stderr
    assert "line 5: file_no: No customer file 755 09999." in r.stderr
    assert f"line 6: card_number: Card {card} is not file " in r.stderr
    assert counts(db) == before
    # With the bad rows gone, the lost card is caught when the purchase is recorded; the good
    # purchase recorded before it is rolled back with it.
    path = csv_file(tmp_path, f"E-1,2026-03-01,{card},,茅台,1,1499,,,cash",
                    f"E-5,2026-03-02,{lost},,茅台,1,10,,,cash", name="second.csv")
    r = invoke("purchases", "import", str(path), "--as", "alice")
    assert r.exit_code == 1
    assert "line 3: card_number: This card was reported lost and no longer works." in r.stderr
    assert "nothing recorded: 1 problem(s) in second.csv" in r.stderr
    assert counts(db) == before


def test_someone_elses_client_is_refused(cli_env, db, story, clock_at, tmp_path):
    clock_at(at(2026, 3, 10))
    alices_card = enrolled(db, story, "alice", 0)
    charlies = file_no(db, story.files["charlie"][0])
    before = counts(db)
    path = csv_file(tmp_path, f"C-1,2026-03-01,,{charlies},茅台,1,700,,,cash",
                    f"C-2,2026-03-01,{alices_card},,茅台,1,100,,,cash")
    r = invoke("purchases", "import", str(path), "--as", "alice")
    assert r.exit_code == 1
    assert f"line 2: file_no: File {charlies} is not a client alice may record purchases for" in r.stderr
    assert "line 3" not in r.stderr
    r = invoke("purchases", "import", str(path), "--as", "charlie")
    assert r.exit_code == 1 and "line 3: card_number: File " in r.stderr and "line 2" not in r.stderr
    assert counts(db) == before
    # Bob leads alice's team, not charlie's.
    r = invoke("purchases", "import", str(path), "--as", "bob")
    assert r.exit_code == 1 and "line 2: file_no:" in r.stderr
    r = invoke("purchases", "import", str(csv_file(tmp_path, f"C-2,2026-03-01,{alices_card},,茅台,1,100,,,cash",
                                                   name="alices.csv")), "--as", "bob")
    assert r.exit_code == 0, r.output
    # Who may not record purchases at all is told so at once.
    for who in ("dave", "cathy", "nobody"):
        r = invoke("purchases", "import", str(path), "--as", who)
        assert r.exit_code == 2 and "--as" in r.stderr


def test_import_refuses_what_is_not_a_pos_export(cli_env, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes("name,mobile\n张伟,13900001111\n".encode())
    r = invoke("purchases", "import", str(bad), "--as", "alice")
    assert r.exit_code == 1 and "line 1: header: " in r.stderr and "nothing recorded" in r.stderr
    bad.write_bytes("收据".encode("gbk"))
    r = invoke("purchases", "import", str(bad), "--as", "alice")
    assert r.exit_code == 1 and "not UTF-8" in r.stderr
    assert invoke("purchases", "import", str(tmp_path / "missing.csv"), "--as", "alice").exit_code == 2


# ---------------------------------------------------------------- jobs daily

def test_jobs_daily_prints_its_report(cli_env, db, vault, story, clock_at):
    clock_at(at(2026, 3, 10))
    alice = story.actor(db, "alice")
    card = enrolled(db, story)
    with db.write() as s:
        purchases.record_purchase(s, vault, alice, PurchaseRequest(
            receipt_no="J-1", lines=(PurchaseLine("茅台", 1, 30_000),), payment_method="cash", card_number=card))
    clock_at(at(2028, 3, 10))
    r = invoke("jobs", "daily")
    assert r.exit_code == 0, r.output
    assert "daily membership job for 2028-03-10" in r.stdout
    assert "members checked:     1" in r.stdout
    assert "points expired:      300 (on 1 card account(s))" in r.stdout
    assert "memberships ended:   1" in r.stdout and "failures:            0" in r.stdout
    again = invoke("jobs", "daily", "--date", "2028-03-10")
    assert again.exit_code == 0 and "members checked:     0" in again.stdout


def test_jobs_daily_refuses_a_future_day_and_fails_when_a_member_fails(cli_env, db, story, clock_at,
                                                                        monkeypatch):
    clock_at(at(2026, 3, 10))
    enrolled(db, story)
    r = invoke("jobs", "daily", "--date", "2026-03-11")
    assert r.exit_code == 2 and "in the future" in r.stderr
    assert invoke("jobs", "daily", "--date", "10/03/2026").exit_code == 2

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(jobs, "daily_for_member", broken)
    r = invoke("jobs", "daily", "--date", "2026-03-09")
    assert r.exit_code == 1
    assert "failures:            1" in r.stdout
    assert "failed: membership " in r.stderr and "1 member(s) failed" in r.stderr


@pytest.mark.parametrize("args", [["purchases"], ["purchases", "import"], ["jobs", "daily"]])
def test_the_new_commands_have_help(args):
    r = invoke(*args, "--help")
    assert r.exit_code == 0 and "Usage: " in r.stdout and len(r.stdout.splitlines()) > 3


# ---------------------------------------------------------------- the parser (pure)

def parse(*rows: str, header: str = HEADER, today=date(2026, 3, 10)):
    from portal.membership.pos_csv import parse_pos_csv
    return parse_pos_csv("\n".join((header, *rows)).encode("utf-8"), today=today)


@pytest.mark.parametrize("raw,fen", [("128.50", 12_850), ("128.5", 12_850), ("128", 12_800), ("0.01", 1),
                                     ("1,280.05", 128_005), ("¥99", 9_900), ("￥９９.９", 9_990),
                                     ("0", 0), ("10.", 1_000), ("19.99", 1_999)])
def test_prices_in_yuan_become_exact_fen(raw, fen):
    from portal.membership.pos_csv import parse_yuan
    assert parse_yuan(raw) == fen


@pytest.mark.parametrize("raw", ["12.345", "-1", "1e3", "", "abc", "1,28.00", "12,3456", "10000001"])
def test_prices_that_are_not_yuan_are_refused(raw):
    from portal.membership.pos_csv import parse_yuan
    with pytest.raises(ValueError):
        parse_yuan(raw)


def test_rows_of_one_receipt_make_one_purchase_and_optional_columns_may_be_left_out():
    r = parse("A-1,2026-03-01,茅台,2,1499,现金", "A-1,2026-03-01,小酒,1,9.9,cash", "A-2,2026/3/2,红酒,1,88,支票",
              header="receipt_no,date,product,quantity,unit_price,payment_method")
    assert r.ok, r.errors
    assert [(p.receipt_no, p.line_numbers, p.payment_method, p.anonymous) for p in r.purchases] == [
        ("A-1", (2, 3), "cash", True), ("A-2", (4,), "cheque", True)]
    assert r.purchases[1].purchased_on == date(2026, 3, 2)
    assert [ln.unit_price_fen for ln in r.purchases[0].lines] == [149_900, 990]
    assert r.line_count == 3 and r.rows == 3


def test_card_and_file_numbers_are_normalised_and_name_the_buyer():
    r = parse("A-1,2026-03-01,75500243,755-00012,茅台,1,10,是,否,Bank Transfer")
    assert r.ok, r.errors
    p = r.purchases[0]
    assert (p.card_number, p.file_no, p.payment_method) == ("755 00243", "755 00012", "bank_transfer")
    assert p.lines[0].special_price and not p.lines[0].group_buy
    req = p.request(uuid.uuid4())
    assert req.card_number == "755 00243" and req.customer_id is None  # the card names the buyer
    fid = uuid.uuid4()
    assert parse("A-2,2026-03-01,,755 00012,茅台,1,10,,,cash").purchases[0].request(fid).customer_id == fid


def test_a_receipt_must_agree_with_itself_and_appear_once():
    r = parse("A-1,2026-03-01,,755 00012,茅台,1,10,,,cash",
              "A-1,2026-03-02,755 00001,755 00012,茅台,1,10,,,credit",
              "A-2,2026-03-01,,,茅台,1,10,,,cash",
              "A-1,2026-03-01,,755 00012,茅台,1,10,,,cash")
    assert not r.ok and r.purchases == []
    got = {(e.line, e.field) for e in r.errors}
    assert got == {(3, "date"), (3, "card_number"), (3, "payment_method"), (5, "receipt_no")}
    assert "already appeared on line 2" in next(e.message for e in r.errors if e.line == 5)


def test_header_problems_and_empty_files():
    assert [e.field for e in parse("x", header="receipt_no,date,product").errors] == ["header"]
    r = parse(header=HEADER + ",colour")
    assert "Unknown column(s): 'colour'" in r.errors[0].message
    assert parse(header=HEADER).errors[0].message.startswith("No rows")
    from portal.membership.pos_csv import parse_pos_csv
    assert parse_pos_csv(b"").errors[0].message.startswith("No rows")
    assert "not UTF-8" in parse_pos_csv("收据".encode("gbk")).errors[0].message


def test_the_parser_reads_receipt_numbers_as_record_purchase_does():
    from portal.membership import pos_csv
    assert pos_csv.RECEIPT.pattern == purchases.RECEIPT.pattern


def test_stored_value_payments_cannot_be_imported():
    r = parse("A-1,2026-03-01,755 00001,,茅台,1,10,,,stored_value")
    assert [(e.line, e.field) for e in r.errors] == [(2, "payment_method")]
    assert "PIN" in r.errors[0].message


# ---------------------------------------------------------------- the demo's programme

def test_the_demo_shows_every_part_of_the_programme(tmp_path, monkeypatch, clock_at):
    from portal import demo as demo_data
    from portal.db import Database
    from portal.membership import overview, points
    from portal.membership.models import CardAccount, MemberCard, MembershipApplication
    from portal.membership.rules import programme_today
    from portal.migrate import upgrade
    from portal.vault import KeyRing, Vault

    from .factories import Story

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    monkeypatch.setenv("PORTAL_DATABASE_URL", url)
    monkeypatch.setenv("PORTAL_KEY_FILE", str(tmp_path / "keys.json"))
    monkeypatch.delenv("PORTAL_DEMO_PASSWORD", raising=False)
    clock_at(at(2026, 3, 4))
    upgrade(url)
    first = invoke("demo")
    assert first.exit_code == 0, first.output
    assert "membership programme:" in first.stdout and f"PIN is {demo_data.DEMO_PIN}" in first.stdout
    db, vault = Database(url), Vault(KeyRing.load(tmp_path / "keys.json"))
    try:
        with db.read() as s:
            # The programme's own demo members (not the reports' two years of purchases, demo_reports.py).
            reports_demo = select(Purchase.membership_id).where(Purchase.receipt_no.like("DR-%"))
            tiers = dict(s.execute(select(Membership.tier, func.count()).where(Membership.id.not_in(reports_demo))
                                   .group_by(Membership.tier)).all())
            statuses = dict(s.execute(select(CardAccount.status, func.count()).group_by(CardAccount.status)).all())
            void = s.scalar(select(func.count()).select_from(MemberCard).where(MemberCard.status == "void"))
            pending = list(s.scalars(select(MembershipApplication).where(MembershipApplication.status == "pending")))
            anonymous = s.scalar(select(Purchase).where(Purchase.customer_id.is_(None)))
            lines = s.execute(select(func.sum(PurchaseLineRow.special_price.cast(Integer)),
                                     func.sum(PurchaseLineRow.group_buy.cast(Integer)))).one()
            stored = s.scalar(select(CardAccount).where(CardAccount.stored_value_fen > 0))
            stored_card = s.scalar(select(MemberCard.number).where(MemberCard.account_id == stored.id,
                                                                   MemberCard.status == "current"))
            users = {u.username: u.id for u in s.scalars(select(User))}
            oldest = s.scalar(select(func.min(PointsEntryRow.on)))
        assert tiers["gold"] == 1 and tiers["silver"] == 1 and sum(tiers.values()) >= 12
        assert statuses.get("frozen") == 1 and void == 1
        assert len(pending) == 1 and pending[0].submitted_by_id == users["alice"]
        assert anonymous is not None and (programme_today() - anonymous.purchased_on).days <= 30
        assert lines[0] >= 1 and lines[1] >= 1  # special-price and group-buy lines
        assert (programme_today() - oldest).days > 700  # points earned ~23 months ago
        story = Story(users=users)
        with db.write() as s:
            alice, cathy = story.actor(db, "alice"), story.actor(db, "cathy")
            due = overview.due_to_expire(s, vault, alice)
            assert due and all((r.expires_on - programme_today()).days <= 30 for r in due)
            assert overview.birthdays_this_week(s, vault, story.actor(db, "grace")) or \
                overview.birthdays_this_week(s, vault, story.actor(db, "henry"))
            # What the printed notes promise works: the PIN, the receipt, the application.
            points.spend_stored_value(s, vault, alice, stored_card, 100, pin=demo_data.DEMO_PIN)
            purchases.claim_missed_points(s, cathy, anonymous.receipt_no, stored_card, "customer forgot the card")
            applications.review_application(s, cathy, pending[0].id, approve=True)
        before = counts(db)
        second = invoke("demo")  # a second run leaves the programme (and everything else) alone
        assert second.exit_code == 0 and "nothing changed" in second.stdout
        assert "membership programme:" in second.stdout
        assert counts(db) == before
    finally:
        db.dispose()
    assert invoke("audit", "verify").exit_code == 0
