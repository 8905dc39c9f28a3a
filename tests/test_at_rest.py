"""Ciphertext at rest: personal values typed into the web UI never reach the database file, its
write-ahead log, any column, the logs, or an error page, as plain text."""
from __future__ import annotations

import logging
import os

import pytest
from sqlalchemy import text

from portal.customers import service as customers_service

from .browser import post, signed_in
from .factories import stored_values, valid_id

NAME = "测试独特名"
MOBILE = "13987654321"
ID_NUMBER = valid_id(birth="19851123", seq="777", area="440305")
ADDRESS = "深圳市福田区独特路1234号"
EMPLOYER = "独特雇主科技有限公司"
POSITION = "首席独特官"
NOTES = "偏好独特普洱茶，生日宴"
NEW_ADDRESS = "广州市越秀区另一独特街56号"
NEW_MOBILE = "13765432198"
VALUES = (NAME, MOBILE, ID_NUMBER, ADDRESS, EMPLOYER, POSITION, NOTES, NEW_ADDRESS, NEW_MOBILE,
          "1985-11-23")


@pytest.fixture
def typed_in(client, db, story, caplog):
    """alice creates a file through the form, opens it, edits it inline, searches and exports."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("portal").setLevel(logging.DEBUG)
    signed_in(client, "alice")
    r = post(client, "/customers/new", {
        "name": NAME, "gender": "F", "mobile": MOBILE, "id_number": ID_NUMBER, "birthday": "",
        "address": ADDRESS, "employer": EMPLOYER, "position": POSITION, "category": "enterprise",
        "notes": NOTES})
    assert r.status_code == 303, r.text[:500]
    page = client.get(r.headers["location"])
    assert NAME in page.text and ID_NUMBER in page.text  # shown to its owner, in full
    file_path = r.headers["location"]
    r = post(client, f"{file_path}/fields/address", {"value": NEW_ADDRESS},
             headers={"HX-Request": "true"})
    assert r.status_code == 200 and NEW_ADDRESS in r.text
    r = post(client, f"{file_path}/fields/mobile", {"value": NEW_MOBILE}, headers={"HX-Request": "true"})
    assert r.status_code == 200
    for q in (NEW_MOBILE, ID_NUMBER):
        assert post(client, "/customers/search", {"q": q}).status_code == 200
    assert post(client, "/customers/search", {"q": NAME}).status_code == 200  # unsupported: a hint
    export = post(client, "/customers/export.csv", {"purpose": "at rest test"})
    assert NAME in export.content.decode("utf-8-sig")
    return file_path




def test_no_personal_value_is_stored_in_any_column(typed_in, db):
    stored = b"\x00".join(stored_values(db))
    for value in VALUES:
        assert value.encode("utf-8") not in stored, value


def test_no_personal_value_is_in_the_sqlite_files(typed_in, db):
    if not db.sqlite:
        pytest.skip("PostgreSQL: checked column by column instead")
    path = db.engine.url.database
    files = [p for p in (path, path + "-wal", path + "-journal") if os.path.exists(p)]
    assert path in files and path + "-wal" in files  # WAL mode: recent writes sit in the -wal file
    for p in files:
        raw = open(p, "rb").read()
        for value in VALUES:
            assert value.encode("utf-8") not in raw, (value, p)
            assert value.encode("utf-16-le") not in raw, (value, p)


def test_no_text_column_holds_a_personal_value_on_postgresql(typed_in, db):
    if db.sqlite:
        pytest.skip("PostgreSQL only")
    with db.engine.connect() as c:
        columns = c.execute(text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'character')"
        )).all()
        assert columns
        for table, column in columns:
            for value in VALUES:
                hits = c.execute(text(f'SELECT count(*) FROM "{table}" WHERE strpos("{column}", :v) > 0'),
                                 {"v": value}).scalar()
                assert hits == 0, (table, column, value)


def test_no_personal_value_is_logged(typed_in, caplog):
    for value in VALUES:
        assert value not in caplog.text, value
    portal_records = [r for r in caplog.records if r.name.startswith("portal")]
    for rec in portal_records:
        for value in VALUES:
            assert value not in rec.getMessage()


def test_a_failing_request_leaks_no_personal_value(client, story, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)

    def failing_create(s, vault, actor, data, **kwargs):
        raise RuntimeError(f"could not store {data.name} {data.mobile} {data.id_number}")

    monkeypatch.setattr(customers_service, "create_file", failing_create)
    signed_in(client, "alice")
    r = post(client, "/customers/new", {"name": NAME, "gender": "F", "mobile": MOBILE,
                                        "id_number": ID_NUMBER, "category": "individual",
                                        "address": ADDRESS})
    assert r.status_code == 500
    for value in (NAME, MOBILE, ID_NUMBER, ADDRESS):
        assert value not in r.text, value
        assert value not in caplog.text, value
    assert any(rec.name == "portal" and rec.levelno == logging.ERROR for rec in caplog.records)


def test_a_rejected_form_is_not_logged_either(client, story, caplog):
    caplog.set_level(logging.DEBUG)
    signed_in(client, "alice")
    r = post(client, "/customers/new", {"name": NAME, "gender": "F", "mobile": "12345",
                                        "id_number": ID_NUMBER, "category": "individual"})
    assert r.status_code == 400
    for value in (NAME, ID_NUMBER):
        assert value not in caplog.text
