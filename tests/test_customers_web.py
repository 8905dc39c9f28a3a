"""Customer files in the browser: create, validate, edit (page and inline), search, page through,
and a leader's view and reassignment."""
from __future__ import annotations

import dataclasses
import html
import re
import uuid

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select

from portal.accounts import service as accounts
from portal.app import create_app
from portal.audit.models import AuditEvent
from portal.customers import service as customers
from portal.customers.models import CustomerFile

from .browser import post, signed_in
from .factories import PASSWORD, customer_input, valid_id

BASE = "http://testserver.local"
UUID_PATH = re.compile(r"^/customers/([0-9a-f-]{36})$")
FORM = {"name": "周杰", "gender": "M", "mobile": "13912345678", "id_number": valid_id(seq="521"),
        "birthday": "", "address": "深圳市宝安区新安街道1号", "employer": "某银行", "position": "行长",
        "category": "finance", "notes": "喜欢高尔夫"}


@pytest.fixture
def en(client):
    """Ask for English, so that messages can be asserted by their words."""
    client.headers["Accept-Language"] = "en"
    return client


def file_count(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(CustomerFile))


def get_file(db, file_id) -> CustomerFile:
    with db.read() as s:
        return s.get(CustomerFile, uuid.UUID(str(file_id)))


def opened(db, vault, file_id) -> customers.CustomerInput:
    with db.read() as s:  # a file opens with its customer's own key, read in a transaction
        return customers.current_input(vault, s.get(CustomerFile, uuid.UUID(str(file_id))))


def file_nos(page: str) -> list[str]:
    return re.findall(r'<a href="/customers/[0-9a-f-]{36}">([^<]+)</a>', page)


def last_entry(db, action: str) -> AuditEvent:
    with db.read() as s:
        return s.scalar(select(AuditEvent).where(AuditEvent.action == action)
                        .order_by(AuditEvent.seq.desc()).limit(1))


# ---------------------------------------------------------------- create

def test_alice_creates_a_file_and_lands_on_it(client, db, vault, story):
    signed_in(client, "alice")
    r = post(client, "/customers/new", FORM)
    assert r.status_code == 303
    m = UUID_PATH.match(r.headers["location"])
    assert m
    f = get_file(db, m.group(1))
    assert re.fullmatch(r"755 \d{5}", f.file_no)
    assert f.file_no == "755 00007"  # 755 files 1-6 are the story's; numbers are per region
    assert f.owner_id == story.users["alice"]
    page = client.get(r.headers["location"]).text
    assert f.file_no in page and FORM["name"] in page and FORM["mobile"] in page
    saved = opened(db, vault, m.group(1))
    assert str(saved.birthday) == "1990-03-07"  # taken from the ID number
    entry = last_entry(db, "customer.create")
    assert (entry.actor_username, entry.object_id) == ("alice", f.file_no)


def test_frank_numbers_his_files_in_region_010(client, db, story):
    signed_in(client, "frank")
    r = post(client, "/customers/new", FORM)
    assert get_file(db, UUID_PATH.match(r.headers["location"]).group(1)).file_no == "010 00002"


def test_a_form_with_errors_is_shown_again_with_messages_and_nothing_is_written(en, db, story):
    signed_in(en, "alice")
    before, before_entry = file_count(db), last_entry(db, "customer.create").seq
    bad = {**FORM, "name": "", "mobile": "12345", "id_number": valid_id()[:-1] + "0",
           "category": "astronaut"}
    if bad["id_number"] == valid_id():
        bad["id_number"] = valid_id()[:-1] + "1"
    r = post(en, "/customers/new", bad)
    assert r.status_code == 400
    for field in ("name", "mobile", "id_number", "category"):
        m = re.search(rf'<span class="error" data-error-for="{field}">([^<]+)</span>', r.text)
        assert m and m.group(1).strip(), field
    assert "11 digits" in r.text
    assert 'value="12345"' in r.text  # what was typed is kept for correction
    assert 'name="address" type="text" value="深圳市宝安区新安街道1号"' in r.text
    assert file_count(db) == before
    assert last_entry(db, "customer.create").seq == before_entry


def test_a_birthday_that_contradicts_the_id_number_is_refused(en, db, story):
    signed_in(en, "alice")
    r = post(en, "/customers/new", {**FORM, "birthday": "1991-01-01"})
    assert r.status_code == 400
    assert 'data-error-for="birthday"' in r.text
    assert file_count(db) == 7


def test_too_long_notes_are_refused(en, db, story):
    signed_in(en, "alice")
    r = post(en, "/customers/new", {**FORM, "notes": "茶" * 2001})
    assert r.status_code == 400 and 'data-error-for="notes"' in r.text
    assert file_count(db) == 7


# ---------------------------------------------------------------- edit

def test_alice_edits_her_file_through_the_form(client, db, vault, story):
    fid = story.files["alice"][0]
    signed_in(client, "alice")
    form_page = client.get(f"/customers/{fid}/edit")
    assert form_page.status_code == 200
    assert 'value="13800130000"' in form_page.text  # the form comes filled in
    current = opened(db, vault, fid)
    data = {k: ("" if v is None else str(v)) for k, v in dataclasses.asdict(current).items()}
    data["employer"] = "新雇主集团"
    r = post(client, f"/customers/{fid}/edit", data)
    assert r.status_code == 303 and r.headers["location"] == f"/customers/{fid}"
    assert opened(db, vault, fid).employer == "新雇主集团"
    assert "新雇主集团" in client.get(f"/customers/{fid}").text
    entry = last_entry(db, "customer.edit")
    assert entry.actor_username == "alice" and entry.fields == "employer"


def test_an_invalid_edit_changes_nothing(en, db, vault, story):
    fid = story.files["alice"][0]
    signed_in(en, "alice")
    before = opened(db, vault, fid)
    data = {k: ("" if v is None else str(v)) for k, v in dataclasses.asdict(before).items()}
    r = post(en, f"/customers/{fid}/edit", {**data, "mobile": "999", "employer": "不该保存"})
    assert r.status_code == 400 and 'data-error-for="mobile"' in r.text
    assert opened(db, vault, fid) == before


def test_alice_edits_one_field_inline_and_gets_only_the_fragment(client, db, vault, story):
    fid = story.files["alice"][0]
    signed_in(client, "alice")
    editor = client.get(f"/customers/{fid}/fields/address?edit=true", headers={"HX-Request": "true"})
    assert editor.status_code == 200
    assert "<html" not in editor.text and "<form" in editor.text and 'name="value"' in editor.text
    r = post(client, f"/customers/{fid}/fields/address", {"value": "上海市浦东新区世纪大道100号"},
             headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert "<html" not in r.text and 'id="field-address"' in r.text
    assert "上海市浦东新区世纪大道100号" in r.text
    assert opened(db, vault, fid).address == "上海市浦东新区世纪大道100号"
    assert last_entry(db, "customer.edit").fields == "address"


def test_the_card_prints_each_field_as_its_fragment_does(client, story):
    """_card.html writes the fields out itself (not through field_row): the same markup, in
    the request's language, as the field's own fragment (_field.html)."""
    fid = story.files["alice"][0]
    signed_in(client, "alice")
    card = " ".join(client.get(f"/customers/{fid}", headers={"HX-Request": "true"}).text.split())
    for field in ("name", "mobile", "notes"):
        one = client.get(f"/customers/{fid}/fields/{field}", headers={"HX-Request": "true"})
        assert one.status_code == 200 and " ".join(one.text.split()) in card, field


# The list's row as the template wrote it before list_table filled a stencil in Python.
_ROW_TEMPLATE = """{% for r, gender, category, tier, created in table %}
    <tr>
      <td><a href="/customers/{{ r.id }}">{{ r.file_no }}</a></td>
      <td>{% if r.erased %}<span class="badge" data-testid="erased">{{ erased }}</span>{% else %}{{ r.name }}{% endif %}</td>
      <td>{{ gender }}</td>
      <td>{{ r.mobile }}</td>
      <td>{{ category }}</td>
      <td>{{ tier }}</td>
      <td>{{ r.owner }}</td>
      <td>{{ created }}</td>
    </tr>
{% endfor %}"""


def test_the_list_rows_print_what_the_template_printed_escaped_alike():
    """views.customers.list_table escapes each value as Jinja2's autoescape does, character for
    character, hostile values included."""
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from jinja2 import Environment

    from portal.views.customers import list_table
    hostile = "<script>alert('x')</script> & \"q\""
    rows = [SimpleNamespace(id=uuid.uuid4(), file_no=f"F{n}<&>", name=name, erased=erased, gender=g, mobile=hostile,
                            category=cat, tier=tier, owner=f"o'{n}\"", created_at=datetime(2026, 1, n + 1, 3, 4, tzinfo=timezone.utc))
            for n, (name, erased, g, cat, tier) in enumerate([(hostile, False, "M", "vip", "gold"),
                                                              ("王*", True, "F", "x<y", None),
                                                              ("a&b", False, "F", "", "odd'tier")])]
    labels = {"male": "男<", "female": "女&", "erased": "已删除\"'", "categories": {"vip": "V<I>P", "x<y": "z"},
              "tiers": {"gold": "金'卡"}}
    ours = list_table(rows, labels, "Asia/Shanghai")
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    from portal.views.rendering import local_time
    when = local_time("Asia/Shanghai")
    table = [(r, labels["male"] if r.gender == "M" else labels["female"], labels["categories"].get(r.category, ""),
              labels["tiers"].get(r.tier, r.tier) if r.tier else "—", when(r.created_at)) for r in rows]
    theirs = env.from_string(_ROW_TEMPLATE).render(table=table, erased=labels["erased"])
    assert str(ours) == theirs
    assert "<script>" not in ours and "&lt;script&gt;" in ours


def test_an_invalid_inline_edit_shows_the_message_in_the_fragment(en, db, vault, story):
    fid = story.files["alice"][0]
    signed_in(en, "alice")
    r = post(en, f"/customers/{fid}/fields/mobile", {"value": "12345"}, headers={"HX-Request": "true"})
    assert r.status_code == 400
    assert "<html" not in r.text and 'role="alert"' in r.text and "11 digits" in r.text
    assert opened(db, vault, fid).mobile == "13800130000"


def test_an_unknown_field_is_not_found(client, story):
    signed_in(client, "alice")
    fid = story.files["alice"][0]
    assert client.get(f"/customers/{fid}/fields/password_hash").status_code == 404
    r = post(client, f"/customers/{fid}/fields/owner_id", {"value": "1"})
    assert r.status_code == 404


# ---------------------------------------------------------------- search

def _search(client, q: str, how: str) -> str:
    if how == "post":
        r = post(client, "/customers/search", {"q": q})
    else:
        r = client.get("/customers", params={"q": q})
    assert r.status_code == 200
    return r.text


@pytest.mark.parametrize("how", ["post", "get"])
@pytest.mark.parametrize("kind", ["mobile", "mobile with +86 and spaces", "id number", "file number",
                                  "file number without space"])
def test_alice_finds_her_file_by_an_exact_value(client, db, story, how, kind):
    f = get_file(db, story.files["alice"][1])
    q = {"mobile": "13800130001", "mobile with +86 and spaces": "+86 138 0013 0001",
         "id number": valid_id(seq="001"), "file number": f.file_no,
         "file number without space": f.file_no.replace(" ", "")}[kind]
    signed_in(client, "alice")
    assert file_nos(_search(client, q, how)) == [f.file_no]


@pytest.mark.parametrize("how", ["post", "get"])
def test_charlie_finds_nothing_of_alices(client, db, story, how):
    f = get_file(db, story.files["alice"][1])
    signed_in(client, "charlie")
    for q in ("13800130001", valid_id(seq="001"), f.file_no):
        page = _search(client, q, how)
        assert file_nos(page) == []
        assert story.files["alice"][1] not in page and "13800130001" not in page.replace(f'value="{q}"', "")


def test_a_search_is_audited_with_what_was_found_but_not_what_was_typed(client, db, story):
    signed_in(client, "alice")
    _search(client, "13800130001", "post")
    entry = last_entry(db, "customer.search")
    assert entry.fields == "mobile" and entry.object_id == get_file(db, story.files["alice"][1]).file_no
    assert "13800130001" not in (entry.detail + entry.reason + entry.object_id)


@pytest.mark.parametrize("q", ["abc123", "13800", "select * from customer_file"])
def test_an_unsupported_query_shows_the_hint(en, story, q):
    signed_in(en, "alice")
    page = _search(en, q, "post")
    assert "Search works on a name or surname, the last four digits of a mobile" in page
    assert file_nos(page) == []


# ---------------------------------------------------------------- the list

def test_the_list_is_newest_first_and_masked(client, db, vault, story):
    signed_in(client, "alice")
    page = client.get("/customers").text
    with db.read() as s:
        mine = list(s.scalars(select(CustomerFile).where(CustomerFile.owner_id == story.users["alice"])
                              .order_by(CustomerFile.created_at.desc(), CustomerFile.id.desc())))
    assert file_nos(page) == [f.file_no for f in mine]
    for n in range(3):
        c = customer_input(n)
        assert c.mobile not in page and c.name not in page and c.id_number not in page
        assert c.mobile[:3] + "****" + c.mobile[-4:] in page
    assert "王*明" in page


def test_the_list_pages_with_an_after_cursor(settings, db, vault, story):
    app = create_app(dataclasses.replace(settings, page_size=2))
    actor = story.actor(db, "alice")
    with db.write() as s:
        for n in range(10, 13):
            customers.create_file(s, vault, actor, customer_input(n))
    with db.read() as s:
        expected = [f.file_no for f in s.scalars(
            select(CustomerFile).where(CustomerFile.owner_id == story.users["alice"])
            .order_by(CustomerFile.created_at.desc(), CustomerFile.id.desc()))]
    assert len(expected) == 6
    with TestClient(app=app, base_url=BASE) as c:
        signed_in(c, "alice")
        seen, url, pages = [], "/customers", 0
        while url:
            page = c.get(url).text
            found = file_nos(page)
            assert 1 <= len(found) <= 2
            seen += found
            pages += 1
            m = re.search(r'href="(/customers\?after=[^"]+)"', page)
            url = html.unescape(m.group(1)) if m else None
        assert pages == 3
        assert seen == expected  # every file once, newest first, across pages


def test_search_results_page_too(settings, db, vault, story):
    app = create_app(dataclasses.replace(settings, page_size=1))
    actor = story.actor(db, "alice")
    with db.write() as s:  # the same mobile on two files (duplicates are possible)
        customers.create_file(s, vault, actor, customer_input(20, mobile="13700001111"))
        customers.create_file(s, vault, actor, customer_input(21, mobile="13700001111"))
    with TestClient(app=app, base_url=BASE) as c:
        signed_in(c, "alice")
        first = post(c, "/customers/search", {"q": "13700001111"})
        after = re.search(r'name="after" value="([^"]+)"', first.text).group(1)
        second = post(c, "/customers/search", {"q": "13700001111", "after": html.unescape(after)})
        both = file_nos(first.text) + file_nos(second.text)
        assert len(both) == 2 and len(set(both)) == 2


def test_a_garbled_cursor_is_ignored(client, story):
    signed_in(client, "alice")
    r = client.get("/customers", params={"after": "not-a-cursor!!"})
    assert r.status_code == 200 and len(file_nos(r.text)) == 3


# ---------------------------------------------------------------- leaders

def _nos(db, story, *owners) -> set[str]:
    return {get_file(db, fid).file_no for o in owners for fid in story.files[o]}


def test_bob_sees_his_teams_files(client, db, story):
    signed_in(client, "bob")
    assert set(file_nos(client.get("/customers").text)) == _nos(db, story, "alice", "bob")


def test_grace_sees_both_teams_of_her_region(client, db, story):
    signed_in(client, "grace")
    assert set(file_nos(client.get("/customers").text)) == _nos(db, story, "alice", "bob", "charlie")


def test_henry_sees_none_of_region_755(client, db, story):
    signed_in(client, "henry")
    assert set(file_nos(client.get("/customers").text)) == _nos(db, story, "frank")


def _add_teammate(db, username="amy", unit="755A"):
    with db.write() as s:
        accounts.add_user(s, username, "salesperson", unit, PASSWORD)


def test_bob_reassigns_a_file_to_alices_teammate_with_a_reason(client, db, story):
    _add_teammate(db)
    fid = story.files["alice"][0]
    signed_in(client, "bob")
    r = post(client, f"/customers/{fid}/reassign", {"owner": "amy", "reason": "Alice moves to Guangzhou"})
    assert r.status_code == 303 and r.headers["location"] == f"/customers/{fid}"
    f = get_file(db, fid)
    with db.read() as s:
        amy_id = s.scalar(select(accounts.User.id).where(accounts.User.username == "amy"))
    assert f.owner_id == amy_id
    entry = last_entry(db, "customer.reassign")
    assert (entry.actor_username, entry.object_id, entry.reason) == ("bob", f.file_no,
                                                                     "Alice moves to Guangzhou")
    assert "alice" in entry.detail and "amy" in entry.detail
    with TestClient(app=client.app, base_url=BASE) as amy:
        signed_in(amy, "amy")
        assert f.file_no in file_nos(amy.get("/customers").text)
    with TestClient(app=client.app, base_url=BASE) as alice:
        signed_in(alice, "alice")
        assert alice.get(f"/customers/{fid}").status_code == 403  # no longer hers


def test_bob_cannot_reassign_to_charlie_on_another_team(en, db, story):
    fid = story.files["alice"][0]
    signed_in(en, "bob")
    r = post(en, f"/customers/{fid}/reassign", {"owner": "charlie", "reason": "Alice moves to team B"})
    assert r.status_code == 400
    assert "The new owner must be in a unit you lead." in r.text
    assert get_file(db, fid).owner_id == story.users["alice"]


@pytest.mark.parametrize("owner, reason, field", [
    ("amy", "meh", "reason"),
    ("nobody-here", "A valid reason here", "owner"),
    ("dave", "Auditors own no files", "owner"),
])
def test_a_reassignment_needs_a_reason_and_a_salesperson(en, db, story, owner, reason, field):
    _add_teammate(db)
    fid = story.files["alice"][0]
    signed_in(en, "bob")
    r = post(en, f"/customers/{fid}/reassign", {"owner": owner, "reason": reason})
    assert r.status_code == 400 and 'class="error"' in r.text
    assert get_file(db, fid).owner_id == story.users["alice"]


def test_grace_may_move_a_file_between_her_teams(client, db, story):
    fid = story.files["alice"][0]
    signed_in(client, "grace")
    r = post(client, f"/customers/{fid}/reassign", {"owner": "charlie", "reason": "Rebalancing the region"})
    assert r.status_code == 303
    f = get_file(db, fid)
    assert f.owner_id == story.users["charlie"]
    with db.read() as s:
        from portal.org.service import unit_by_code
        assert f.unit_path == unit_by_code(s, "755B").path  # the file moves with its owner's unit


def test_a_leader_may_not_edit_a_file_they_only_supervise(client, db, vault, story):
    fid = story.files["alice"][0]
    signed_in(client, "bob")
    assert client.get(f"/customers/{fid}").status_code == 200
    assert client.get(f"/customers/{fid}/edit").status_code == 403
    before = opened(db, vault, fid)
    data = {k: ("" if v is None else str(v)) for k, v in dataclasses.asdict(before).items()}
    r = post(client, f"/customers/{fid}/edit", {**data, "employer": "bob was here"})
    assert r.status_code == 403
    assert opened(db, vault, fid) == before


def test_a_region_needs_a_numeric_code_because_it_starts_file_numbers(client, db, story):
    signed_in(client, "erin")
    r = post(client, "/admin/units", {"code": "SZ", "name": "深圳新大区", "parent": "HQ"},
             from_page="/admin/units")
    assert r.status_code == 400
    r = post(client, "/admin/units", {"code": "020", "name": "广州大区", "parent": "HQ"},
             from_page="/admin/units")
    assert r.status_code == 303
    r = post(client, "/admin/units", {"code": "020A", "name": "广州一组", "parent": "020"},
             from_page="/admin/units")
    assert r.status_code == 303  # teams may have letters
    with db.write() as s:
        accounts.add_user(s, "gz", "salesperson", "020A", PASSWORD)
    with TestClient(app=client.app, base_url=BASE) as gz:
        signed_in(gz, "gz")
        r = post(gz, "/customers/new", FORM)
        assert r.status_code == 303
        assert get_file(db, UUID_PATH.match(r.headers["location"]).group(1)).file_no == "020 00001"


# ---------------------------------------------------------------- audit before reveal

def test_nothing_personal_is_shown_when_the_audit_entry_cannot_be_written(client, db, vault, story, monkeypatch):
    """The pages read first (a snapshot), then append and commit the audit entry, then render:
    if the append fails, the answer is an error page with none of what was read."""
    from portal.audit import service as audit_service
    signed_in(client, "alice")
    fid = story.files["alice"][0]
    plain = opened(db, vault, fid)
    listed = client.get("/customers").text
    shown = file_nos(listed)
    assert shown and plain.name in client.get(f"/customers/{fid}").text
    csrf = re.search(r'name="_csrf" value="([^"]+)"', listed).group(1)
    with db.read() as s:
        entries = s.scalar(select(func.count()).select_from(AuditEvent))
    record = audit_service.record

    def failing(s, actor, action, *args, **kwargs):
        if action in ("customer.list", "customer.search", "customer.view", "customer.edit"):
            raise RuntimeError("the audit log is full")
        return record(s, actor, action, *args, **kwargs)

    monkeypatch.setattr(audit_service, "record", failing)
    append = audit_service.append_committed  # the pages' own short audit transaction

    def failing_append(db_, actor, action, *args, **kwargs):
        if action in ("customer.list", "customer.search", "customer.view", "customer.edit"):
            raise RuntimeError("the audit log is full")
        return append(db_, actor, action, *args, **kwargs)

    monkeypatch.setattr(audit_service, "append_committed", failing_append)
    answers = [client.get("/customers"), client.get("/customers", headers={"HX-Request": "true"}),
               client.post("/customers/search", data={"q": plain.mobile, "_csrf": csrf}),
               client.get(f"/customers/{fid}"), client.get(f"/customers/{fid}/edit"),
               client.get(f"/customers/{fid}/fields/mobile"), client.get(f"/customers/{fid}/fields/name?edit=true")]
    masked_mobile = plain.mobile[:3] + "****" + plain.mobile[-4:]
    for r in answers:
        assert r.status_code == 500, (r.request.url, r.status_code)
        for value in (*shown, plain.name, plain.mobile, masked_mobile, plain.id_number, plain.address):
            assert value not in r.text, (r.request.url, value)
    with db.read() as s:  # and none of them left an entry (the ones refused for a colleague's file do)
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == entries
