"""Sorting and filtering the file list: every order pages completely with keyset cursors, the
state lives in the URL (never personal data), and the scope still holds."""
from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select, update

from portal import clock
from portal.access.models import AccessRequest
from portal.accounts.actor import Actor
from portal.accounts.models import User
from portal.customers import listing
from portal.customers.models import CustomerFile
from portal.membership import members
from portal.membership.models import Membership

from .browser import signed_in

TIER_RANK = {None: 0, "regular": 1, "silver": 2, "gold": 3, "platinum": 4}


@pytest.fixture
def tiers(db, story):
    """alice's first client is gold, charlie's first silver, bob's regular; the rest are not members."""
    plan = {story.files["alice"][0]: "gold", story.files["charlie"][0]: "silver", story.files["bob"][0]: "regular"}
    with db.write() as s:
        for fid, tier in plan.items():
            members.enrol(s, Actor.system("test"), uuid.UUID(fid), cause="import")
            s.execute(update(Membership).where(Membership.customer_id == uuid.UUID(fid)).values(tier=tier))
    return plan


def _expected(db, actor_files: set[str], sort: str, direction: str) -> list[str]:
    with db.read() as s:
        rows = list(s.execute(select(CustomerFile, Membership.tier, User.username)
                              .outerjoin(Membership, Membership.customer_id == CustomerFile.id)
                              .join(User, User.id == CustomerFile.owner_id)
                              .where(CustomerFile.id.in_([uuid.UUID(f) for f in actor_files]))))
    key = {"created": lambda r: (r[0].created_at, r[0].id),
           "file_no": lambda r: (r[0].file_no, r[0].id),
           "category": lambda r: (r[0].category, r[0].created_at, r[0].id),
           "tier": lambda r: (TIER_RANK[r[1]], r[0].created_at, r[0].id),
           "owner": lambda r: (r[2], r[0].created_at, r[0].id)}[sort]
    rows.sort(key=key, reverse=direction == "desc")
    return [str(r[0].id) for r in rows]


def _all_pages(db, vault, actor, lq, limit=2) -> list[str]:
    out, cursor = [], None
    for _ in range(20):
        with db.write() as s:
            page = listing.list_files(s, vault, actor, cursor=cursor, limit=limit, query=lq)
        out += [str(r.id) for r in page.rows]
        assert len(page.rows) <= limit
        cursor = page.next_cursor
        if cursor is None:
            return out
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("direction", ["desc", "asc"])
@pytest.mark.parametrize("sort", listing.SORTS)
def test_every_sort_pages_through_graces_region_in_order(db, vault, story, tiers, sort, direction):
    # grace leads the 755 region: alice's, bob's and charlie's files, over several units.
    grace = story.actor(db, "grace")
    visible = set(story.files["alice"] + story.files["bob"] + story.files["charlie"])
    got = _all_pages(db, vault, grace, listing.ListQuery(sort=sort, direction=direction))
    assert got == _expected(db, visible, sort, direction)


@pytest.mark.parametrize("sort", listing.SORTS)
def test_alices_sorted_list_holds_only_her_files(db, vault, story, tiers, sort):
    alice = story.actor(db, "alice")
    got = _all_pages(db, vault, alice, listing.ListQuery(sort=sort, direction="asc"), limit=1)
    assert got == _expected(db, set(story.files["alice"]), sort, "asc")


def test_filters(db, vault, story, tiers):
    grace = story.actor(db, "grace")
    def ids(**kw):
        return set(_all_pages(db, vault, grace, listing.ListQuery(**kw), limit=50))
    assert ids(tier="gold") == {story.files["alice"][0]}
    assert ids(tier="none") == set(story.files["alice"][1:] + story.files["charlie"][1:])
    assert ids(owner="charlie") == set(story.files["charlie"])
    assert ids(owner="frank") == set()  # not in her region: the scope still holds
    assert ids(category="finance") == set()
    assert ids(category="individual") == set(story.files["alice"] + story.files["bob"] + story.files["charlie"])
    assert ids(granted=True) == set()
    now = clock.now()
    with db.write() as s:
        f = s.get(CustomerFile, uuid.UUID(story.files["charlie"][1]))
        s.add(AccessRequest(requester_id=story.users["alice"], file_id=f.id, file_no=f.file_no,
                            unit_path=f.unit_path, reason="a client asked for a colleague", scope="view",
                            hours_requested=24, created_at=now, status="approved",
                            expires_at=now + timedelta(hours=1)))
    assert ids(granted=True) == {story.files["charlie"][1]}


def test_a_cursor_of_another_order_starts_from_the_top(db, vault, story):
    bob = story.actor(db, "bob")
    with db.write() as s:
        first = listing.list_files(s, vault, bob, limit=1)
        other = listing.list_files(s, vault, bob, limit=1, cursor=first.next_cursor,
                                   query=listing.ListQuery(sort="file_no", direction="asc"))
        top = listing.list_files(s, vault, bob, limit=1, query=listing.ListQuery(sort="file_no", direction="asc"))
    assert [r.id for r in other.rows] == [r.id for r in top.rows]


@pytest.mark.parametrize("sort", listing.SORTS)
def test_the_driver_cursor_reads_what_sqlalchemy_reads(db, vault, story, tiers, sort):
    """A page's statement runs on the driver's cursor (driver_sql.Prebuilt): the same rows, the
    same values and types, as SQLAlchemy's execution of it, first page and next."""
    from portal.customers import search
    grace = story.actor(db, "grace")
    for lq in (listing.ListQuery(sort=sort), listing.ListQuery(sort=sort, direction="asc", tier="none")):
        with db.connect_read() as conn:
            reader = listing._Reader(conn, grace, lq, search.read_query(vault, ""), False)
            params = {**reader.params, "lim": 3}
            first = listing._statement(reader.shapes[0]).all(conn, params)
            assert first == [tuple(r) for r in conn.execute(listing._statement(reader.shapes[0]).stmt, params)]
            assert first and isinstance(first[0][listing.ID], uuid.UUID)
            params.update({f"k{i}": v for i, v in enumerate(listing._key_of(first[-1], sort))})
            after = listing._statement(reader.shapes[1]).all(conn, params)
            assert after == [tuple(r) for r in conn.execute(listing._statement(reader.shapes[1]).stmt, params)]
            assert not {r[listing.ID] for r in after} & {r[listing.ID] for r in first}
            assert after or lq.tier  # grace sees more than three files


# ---------------------------------------------------------------- in the browser

def test_the_next_page_link_keeps_sort_and_filter_in_the_url(client, app, db, story, tiers):
    app.state.settings = dataclasses.replace(app.state.settings, page_size=2)
    signed_in(client, "grace")
    r = client.get("/customers?sort=file_no&dir=asc&tier=none")
    assert r.status_code == 200
    nxt = re.search(r'href="(/customers\?[^"]*after=[^"]+)"', r.text).group(1).replace("&amp;", "&")
    params = parse_qs(urlparse(nxt).query)
    assert params["sort"] == ["file_no"] and params["dir"] == ["asc"] and params["tier"] == ["none"]
    page2 = client.get(nxt)
    assert page2.status_code == 200
    # The filter form shows the state it came from (what Back restores).
    assert 'value="none" selected' in page2.text and 'value="file_no" selected' in page2.text
    first = re.findall(r'<a href="/customers/[0-9a-f-]{36}">([^<]+)</a>', r.text)
    second = re.findall(r'<a href="/customers/[0-9a-f-]{36}">([^<]+)</a>', page2.text)
    assert first == sorted(first) and second == sorted(second) and first[-1] < second[0]


def test_each_sortable_heading_links_its_order_and_keeps_the_filters(client, story, tiers):
    signed_in(client, "bob")
    html = client.get("/customers?sort=tier&tier=none").text
    heads = re.findall(r'<th( aria-sort="\w+")?><a href="(/customers\?[^"]*)"[^>]*>([^<]*)</a></th>', html)
    queries = [(aria, parse_qs(urlparse(u.replace("&amp;", "&")).query)) for aria, u, _ in heads]
    links = {q.get("sort", ["created"])[0]: (aria, q) for aria, q in queries}  # created: the default
    assert set(links) == {"file_no", "category", "tier", "owner", "created"}
    assert links["tier"][0] == ' aria-sort="descending"' and links["tier"][1]["dir"] == ["asc"]
    assert all(not aria and "dir" not in q for k, (aria, q) in links.items() if k != "tier")
    assert all(q["tier"] == ["none"] for _, q in links.values())
    assert html.count("aria-sort=") == 1 and "↓</a></th>" in html


def test_no_personal_data_in_list_urls(client, db, vault, story, tiers):
    signed_in(client, "bob")
    html = client.get("/customers?sort=tier").text
    urls = re.findall(r'(?:href|hx-get)="(/customers\?[^"]*)"', html)
    assert urls
    for u in urls:
        assert "1380013" not in u and "%E7%8E%8B" not in u.upper() and "王" not in u


def test_an_owner_sort_is_offered_to_leaders_only(client, story):
    signed_in(client, "alice")
    assert 'name="owner"' not in client.get("/customers").text
    signed_in(client, "bob")
    assert 'name="owner"' in client.get("/customers").text


def test_the_cached_filter_form_is_the_fresh_one_for_each_language_state_and_owners():
    """views/list_filters.py: the form reused from the cache is what a fresh rendering gives, and
    a different language, order, filter or owner list never gets another's form."""
    from portal import i18n
    from portal.app import _jinja_env
    from portal.views.list_filters import FilterForm
    form = FilterForm(_jinja_env())
    queries = [listing.ListQuery(), listing.ListQuery(sort="tier", direction="asc", tier="none"),
               listing.ListQuery(category=next(iter(listing.rules.Category)).value, owner="alice", granted=True)]
    seen = set()
    for _ in range(2):  # the second round comes from the cache
        for locale in i18n.LOCALES:
            token = i18n.current_locale.set(locale)
            try:
                for lq in queries:
                    for owners in ([], ["alice", "dave"]):
                        html = form(lq, owners)
                        assert html == form.render(lq, owners)
                        assert ('name="owner"' in html) == bool(owners)
                        assert ('value="1" checked' in html) == lq.granted
                        seen.add(str(html))
            finally:
                i18n.current_locale.reset(token)
    assert len(seen) == len(i18n.LOCALES) * len(queries) * 2
