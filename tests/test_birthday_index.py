"""Birthdays today on the home page read only the candidates of a truncated month-day blind index
(birthday_md_bidx) and count the same as decrypting every birthday in scope did."""
from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import select, update

from portal.accounts.actor import Actor
from portal.audit.models import AuditEvent
from portal.cli.customers import reindex_files
from portal.customers import search
from portal.customers import service as customers
from portal.customers.models import CustomerFile
from portal.home.sales import reminders
from portal.membership import members
from portal.membership.models import Membership
from portal.membership.pricing import birthday_applies, birthday_days
from portal.policy import Action
from portal.policy.scope import member_scope
from portal.privacy import erasure

from .factories import customer_input

SYSTEM = Actor.system("test")
DAYS = [date(2027, 2, 28), date(2027, 3, 1), date(2028, 2, 28), date(2028, 2, 29), date(2028, 3, 1),
        date(2027, 12, 31), date(2028, 1, 1)]


def full_decrypt_count(s, vault, actor, today: date) -> int:
    """The count as the home page made it before the index: every birthday in scope decrypted."""
    rows = s.execute(select(CustomerFile.id, CustomerFile.birthday_ct)
                     .join(Membership, Membership.customer_id == CustomerFile.id)
                     .where(member_scope(actor, Action.MEMBER_LISTS), Membership.status == "active",
                            CustomerFile.birthday_ct.is_not(None))).all()
    n = 0
    for fid, blob in rows:
        raw = vault.decrypt(blob, table="customer_file", column="birthday", row_id=fid)
        n += birthday_applies(date.fromisoformat(raw) if raw else None, today)
    return n


def _member_file(s, vault, actor, n: int, born: date | None, status: str = "active") -> CustomerFile:
    f = customers.create_file(s, vault, actor, customer_input(n, id_number=None, birthday=born))
    m = members.enrol(s, SYSTEM, f.id, cause="import")
    m.status = status
    s.flush()
    return f


def _colliding_days(vault) -> tuple[date, date]:
    """Two month-days (not 29 February) with the same index value: 7 bits, so some exist."""
    first: dict[str, date] = {}
    d = date(2027, 1, 1)
    while d.year == 2027:
        v = search.birthday_index(vault, d.month, d.day)
        if v in first:
            return first[v], d
        first[v] = d
        d += timedelta(days=1)
    raise AssertionError("no collision")


def test_the_count_is_the_full_decrypt_count_on_random_birthdays(db, vault, story):
    rnd = random.Random(16)
    alice, charlie, bob = (story.actor(db, u) for u in ("alice", "charlie", "bob"))
    special = [date(2000, 2, 29), date(1996, 2, 29), date(1999, 2, 28), date(2000, 2, 28), date(1990, 3, 1),
               date(1992, 3, 1), date(1980, 12, 31), date(1981, 1, 1)]
    a, b = _colliding_days(vault)  # one index value: on a's day, b's birthday is a candidate only
    special += [a.replace(year=1985), b.replace(year=1986)]
    with db.write() as s:
        n = 200
        for i in range(60):
            owner = (alice, alice, charlie)[i % 3]
            born = special[i] if i < len(special) else (
                None if i % 7 == 0 else date(1950, 1, 1) + timedelta(days=rnd.randrange(365 * 50)))
            status = "ended" if i % 11 == 5 else "active"
            _member_file(s, vault, owner, n + i, born, status)
        # an erased member whose birthday is 28 February
        gone = _member_file(s, vault, alice, 300, date(1970, 2, 28))
        erasure.erase_customer(s, SYSTEM, gone)
        # a file that is not a member
        customers.create_file(s, vault, alice, customer_input(301, id_number=None, birthday=date(1970, 2, 28)))
    days = DAYS + [a.replace(year=2027), b.replace(year=2027)] + [date(2027, 1, 1) + timedelta(days=rnd.randrange(730)) for _ in range(10)]
    seen = 0
    with db.write() as s:
        for who in (alice, charlie, bob):
            for today in days:
                got = reminders(s, vault, who, today).birthdays_today
                assert got == full_decrypt_count(s, vault, who, today), (who.username, today)
                seen += got
    assert seen > 10  # the days chosen do have birthdays


def test_candidates_are_only_todays_index_values_and_the_audit_says_how_many(db, vault, story):
    alice = story.actor(db, "alice")
    a, b = _colliding_days(vault)
    with db.write() as s:
        _member_file(s, vault, alice, 200, a.replace(year=1980))
        _member_file(s, vault, alice, 201, b.replace(year=1981))  # same index value, another day
        _member_file(s, vault, alice, 202, (a + timedelta(days=1)).replace(year=1982))
    with db.write() as s:
        candidates = set(search.birthday_values(vault, [(a.month, a.day)]))
        assert reminders(s, vault, alice, a.replace(year=2027)).birthdays_today == 1
        ev = s.scalars(select(AuditEvent).where(AuditEvent.object_id == "birthdays_today")
                       .order_by(AuditEvent.seq.desc())).first()
        # Her active members' files with a candidate value (the story's other files of hers, not
        # members, may share a value too: they are never read).
        read = sum(1 for b in s.scalars(select(CustomerFile.birthday_md_bidx)
                                        .join(Membership, Membership.customer_id == CustomerFile.id)
                                        .where(CustomerFile.owner_id == alice.user_id,
                                               Membership.status == "active")) if b in candidates)
        assert read >= 2 and ev.detail == f"{read} birthdays read to count today's"


def test_a_file_without_the_index_is_still_counted_and_reindex_fills_it(db, vault, story):
    alice = story.actor(db, "alice")
    with db.write() as s:
        f = _member_file(s, vault, alice, 200, date(1980, 2, 29))
        fid = f.id
    with db.write() as s:
        s.execute(update(CustomerFile).where(CustomerFile.id == fid).values(birthday_md_bidx=None))
    for today, want in ((date(2027, 2, 28), 1), (date(2028, 2, 29), 1), (date(2028, 2, 28), 0)):
        with db.write() as s:
            assert reminders(s, vault, alice, today).birthdays_today == want == full_decrypt_count(
                s, vault, alice, today)
    assert reindex_files(db, vault) >= 1
    with db.read() as s:
        assert s.get(CustomerFile, fid).birthday_md_bidx == search.birthday_index(vault, 2, 29)
        assert s.scalar(select(CustomerFile.id).where(search.birthday_unindexed())) is None
    with db.write() as s:
        assert reminders(s, vault, alice, date(2027, 2, 28)).birthdays_today == 1
        assert reminders(s, vault, alice, date(2028, 2, 28)).birthdays_today == 0


def test_an_edited_birthday_moves_the_file(db, vault, story):
    alice = story.actor(db, "alice")
    with db.write() as s:
        fid = _member_file(s, vault, alice, 200, date(1980, 5, 5)).id
    with db.write() as s:
        assert reminders(s, vault, alice, date(2027, 5, 5)).birthdays_today == 1
        data = customers.current_input(vault, s.get(CustomerFile, fid))
        data.birthday = date(1980, 9, 9)
        customers.update_file(s, vault, alice, fid, data)
    with db.write() as s:
        assert s.get(CustomerFile, fid).birthday_md_bidx == search.birthday_index(vault, 9, 9)
        assert reminders(s, vault, alice, date(2027, 5, 5)).birthdays_today == 0
        assert reminders(s, vault, alice, date(2027, 9, 9)).birthdays_today == 1


def test_erasure_clears_the_index(db, vault, story):
    alice = story.actor(db, "alice")
    with db.write() as s:
        f = _member_file(s, vault, alice, 200, date(1980, 5, 5))
        assert f.birthday_md_bidx is not None
        erasure.erase_customer(s, SYSTEM, f)
    with db.read() as s:
        assert s.get(CustomerFile, f.id).birthday_md_bidx is None
        assert s.scalar(select(CustomerFile.id).where(search.birthday_unindexed())) is None
    # An erased file's fields no longer open: reindex leaves it (it used to take it up every run).
    assert reindex_files(db, vault, batch=1) == 0


def test_birthday_days_agree_with_birthday_applies():
    d = date(2027, 1, 1)
    births = [date(2000, 1, 1) + timedelta(days=i) for i in range(366)]  # 2000 is a leap year
    while d < date(2029, 1, 1):
        assert {(b.month, b.day) for b in births if birthday_applies(b, d)} == set(birthday_days(d)), d
        d += timedelta(days=1)


def test_the_birthday_index_has_its_own_key_and_seven_bits(vault):
    values = {search.birthday_index(vault, m, d) for m, d in ((1, 1), (2, 29), (7, 14), (12, 31))}
    assert all(int(v, 16) < 128 for v in values)
    assert search.birthday_index(vault, 2, 29) != search.tail_index(vault, "0229")
    assert len({search.birthday_index(vault, (date(2028, 1, 1) + timedelta(days=i)).month,
                                      (date(2028, 1, 1) + timedelta(days=i)).day) for i in range(366)}) > 100


def test_the_birthday_jobs_read_the_same_candidates(db, vault, story, monkeypatch):
    """The birthday coupons and the birthday wishes select the candidates the same way: a file not
    indexed yet still gets its coupon and wish, one on another day of the same value does not."""
    from portal.membership import coupons
    from portal.membership.models import Coupon
    from portal.messages import occasions

    alice = story.actor(db, "alice")
    a, b = _colliding_days(vault)
    with db.write() as s:
        today_f = _member_file(s, vault, alice, 200, a.replace(year=1980))
        other_f = _member_file(s, vault, alice, 201, b.replace(year=1981))
        for m in s.scalars(select(Membership).where(Membership.customer_id.in_([today_f.id, other_f.id]))):
            m.tier = "gold"
        s.execute(update(CustomerFile).where(CustomerFile.id == today_f.id).values(birthday_md_bidx=None))
    today = a.replace(year=2027)
    with db.write() as s:
        assert coupons.issue_birthday_coupons(s, vault, today) == 1
        owners = set(s.scalars(select(Membership.customer_id).join(Coupon, Coupon.membership_id == Membership.id)
                               .where(Coupon.source == "birthday")))
        assert owners == {today_f.id}
        wished = []
        monkeypatch.setattr(occasions.outbox, "enqueue", lambda s, **kw: wished.append(kw["customer_id"]))
        occasions.enqueue_birthdays(s, vault, today)
        assert today_f.id in wished and other_f.id not in wished
