"""The auditor's log a compliance officer can read: in words (zh-CN and English) with the codes kept,
runs of list views folded (every entry still in the chain and the CSV), counts and paging both ways,
a file's history one click away, alerts in the auditors' inbox, and one rule for a thin reason."""
from __future__ import annotations

import csv
import dataclasses
import html
import io
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from portal.access import service as access
from portal.access.reasons import is_full_reason, reason_weight
from portal.app import create_app
from portal.audit import service as audit
from portal.cli import main
from portal.customers.models import CustomerFile

from .browser import post, signed_in, start_export
from .test_audit_log import rows

BASE = "http://testserver.local"
SHANGHAI = timezone(timedelta(hours=8))
T0 = datetime(2030, 5, 7, 10, 0, tzinfo=SHANGHAI).astimezone(timezone.utc)


def browser(app, username: str, lang: str):
    c = TestClient(app=app, base_url=BASE)
    c.__enter__()
    c.headers["Accept-Language"] = lang
    signed_in(c, username)
    return c


def file_no(db, file_id: str) -> str:
    with db.read() as s:
        return s.get(CustomerFile, uuid.UUID(file_id)).file_no


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def alice_works(app, story, purpose: str) -> None:
    alice = browser(app, "alice", "en")
    try:
        assert alice.get(f"/customers/{story.files['alice'][0]}").status_code == 200
        assert start_export(alice, purpose).status_code == 200
    finally:
        alice.__exit__(None, None, None)


# ---------------------------------------------------------------- in words

def test_dave_reads_the_log_in_chinese_with_the_codes_kept(app, db, story):
    alice_works(app, story, "季度回访")
    no = file_no(db, story.files["alice"][0])
    n = len(story.files["alice"])
    dave = browser(app, "dave", "zh-CN")
    page = dave.get("/audit", params={"actor": "alice"}).text
    found = rows(page)
    whats = {r["what"] for r in found}
    assert f"查看档案 {no}" in whats
    assert any(w.startswith(f"导出 {n} 份档案（用途：季度回访）") for w in whats)
    assert "登录" in whats
    # The code stays in its own column (and the tooltip), never instead of the words.
    assert {"customer.view", "customer.export"} <= {r["action"] for r in found}
    assert not any(r["what"].startswith(("customer.", "auth.")) for r in found)
    assert "rows=" not in text_of(page) and "masked row" not in text_of(page)
    assert "alice 的操作记录" in page


def test_dave_reads_the_log_in_english(app, db, story):
    alice_works(app, story, "quarterly call-backs")
    no = file_no(db, story.files["alice"][0])
    n = len(story.files["alice"])
    dave = browser(app, "dave", "en")
    found = rows(dave.get("/audit", params={"actor": "alice"}).text)
    whats = {r["what"] for r in found}
    assert f"Viewed file {no}" in whats
    assert any(w.startswith(f"Exported {n} files (purpose: quarterly call-backs)") for w in whats)
    refused = rows(dave.get("/audit", params={"outcome": "denied"}).text)
    assert all(r["what"].startswith("Refused: ") for r in refused)


def test_every_action_in_the_log_has_words(app, db, story):
    """Whatever the story and a working day wrote, none falls back to its bare code."""
    alice_works(app, story, "quarterly call-backs")
    from portal.audit import wording
    from portal.audit.models import AuditEvent
    from sqlalchemy import select
    with db.read() as s:
        events = list(s.scalars(select(AuditEvent)))
    unknown = {e.action for e in events if wording.describe(e).what.message.startswith("%(action)s")}
    assert not unknown


def test_the_csv_keeps_the_codes(app, db, story):
    alice_works(app, story, "quarterly call-backs")
    dave = browser(app, "dave", "zh-CN")
    table = list(csv.reader(io.StringIO(dave.get("/audit/export.csv").content.decode("utf-8-sig"))))
    assert table[0][4] == "action"
    assert {"customer.view", "customer.export"} <= {r[4] for r in table[1:]}


# ---------------------------------------------------------------- folded, nothing lost

def test_a_run_of_list_views_is_one_line_and_every_entry_stays(app, db, story):
    alice = browser(app, "alice", "en")
    for _ in range(6):
        assert alice.get("/customers").status_code == 200
    dave = browser(app, "dave", "en")
    page = dave.get("/audit", params={"actor": "alice"}).text
    folded = re.findall(r'data-testid="folded-count">(\d+) list views<', page)
    assert folded == ["6"]
    # Expanding it (a details element: no script) shows every entry, each with its own row.
    assert [r["action"] for r in rows(page)].count("customer.list") == 6
    table = list(csv.reader(io.StringIO(dave.get("/audit/export.csv", params={"actor": "alice"})
                                        .content.decode("utf-8-sig"))))
    assert [r[4] for r in table[1:]].count("customer.list") == 6
    with db.read() as s:
        assert audit.verify_chain(s).ok


def test_list_views_far_apart_are_not_folded(app, db, story, clock_at):
    clock_at(T0)
    alice = browser(app, "alice", "en")
    assert alice.get("/customers").status_code == 200
    clock_at(T0 + timedelta(minutes=11))
    assert alice.get("/customers").status_code == 200
    dave = browser(app, "dave", "en")
    page = dave.get("/audit", params={"actor": "alice", "action": "customer.list"}).text
    assert 'data-testid="folded-line"' not in page
    assert len(rows(page)) == 2


# ---------------------------------------------------------------- counts and paging both ways

def test_the_count_and_paging_older_then_newer(settings, db, story):
    app = create_app(dataclasses.replace(settings, page_size=3))
    dave = browser(app, "dave", "en")
    with db.read() as s:
        total = s.scalar(__import__("sqlalchemy").text(
            "SELECT count(*) FROM audit_event WHERE action = 'user.create'"))
    assert total > 6
    first = dave.get("/audit", params={"action": "user.create"}).text
    assert f"{total} entries match." in first
    seqs1 = [int(r["seq"]) for r in rows(first)]
    assert 'rel="prev"' not in first
    older = html.unescape(re.search(r'rel="next" href="([^"]+)"', first).group(1))
    second = dave.get(older).text
    seqs2 = [int(r["seq"]) for r in rows(second)]
    assert max(seqs2) < min(seqs1) and f"{total} entries match." in second
    newer = html.unescape(re.search(r'rel="prev" href="([^"]+)"', second).group(1))
    assert "action=user.create" in newer and "after=" in newer
    assert [int(r["seq"]) for r in rows(dave.get(newer).text)] == seqs1


# ---------------------------------------------------------------- one click away

def test_a_files_history_is_one_click_from_its_entry(app, db, story):
    no = file_no(db, story.files["alice"][0])
    with db.write() as s:
        r = access.request_access(s, story.actor(db, "charlie"), no,
                                  "Customer called the Shenzhen B team about her order", hours=4)
    with db.write() as s:
        access.decide(s, story.actor(db, "bob"), r.id, True)
    charlie = browser(app, "charlie", "en")
    assert charlie.get(f"/customers/{story.files['alice'][0]}").status_code == 200
    dave = browser(app, "dave", "en")
    page = dave.get("/audit", params={"actor": "charlie"}).text
    link = html.unescape(re.search(r'href="(/audit/history\?file=[^"]+)"', page).group(1))
    history = dave.get(link)
    assert history.status_code == 200
    t = text_of(history.text)
    assert f"Access history of file {no}" in t
    assert f"grant #{r.id}" in t and "charlie" in t and "Mobile" in t
    assert "alice" in t and "salesperson" in t  # her own views: by role
    assert 'href="/audit?actor=charlie"' in history.text  # the user's activity, one click on


# ---------------------------------------------------------------- alerts reach the auditors

def test_a_thin_reason_alert_lands_in_daves_inbox_once_with_its_user(settings, app, db, story, clock_at):
    clock_at(T0)
    no = file_no(db, story.files["alice"][0])
    with db.write() as s:  # asked while the minimum was lower; the setting was raised since
        r = access.request_access(s, story.actor(db, "charlie"), no, "need it now", hours=4, reason_min=5)
    with db.write() as s:
        access.decide(s, story.actor(db, "bob"), r.id, True)
    charlie = browser(app, "charlie", "en")
    assert charlie.get(f"/customers/{story.files['alice'][0]}").status_code == 200
    env = {"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file)}
    first = CliRunner().invoke(main, ["jobs", "alerts"], env=env)
    assert first.exit_code == 0 and "1 new" in first.output, first.output
    again = CliRunner().invoke(main, ["jobs", "alerts"], env=env)
    assert "0 new" in again.output
    for lang, words in (("en", f"charlie viewed file {no} 1 times under grant #{r.id}, given for a thin "
                                "reason: need it now"),
                        ("zh-CN", f"charlie 凭授权 #{r.id} 查看档案 {no} 1 次")):
        dave = browser(app, "dave", lang)
        inbox = dave.get("/inbox").text
        assert words in text_of(inbox)
        assert f'href="/audit/history?file={no.replace(" ", "%20")}"' in inbox
        assert text_of(inbox).count(words) == 1
    bob = browser(app, "bob", "en")
    assert "thin reason" not in bob.get("/inbox").text


# ---------------------------------------------------------------- one rule for a thin reason

@pytest.mark.parametrize("reason, full", [
    ("客户来电询问积分余额和生日礼品。", True),          # 16 characters of Chinese
    ("Customer asked about her points balance", True),
    ("need it now", False),
    ("帮忙看一下", False),
    ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", False),
    ("。。。。。。。。。。。。。。。。。。。。", False),
])
def test_a_reason_is_judged_by_its_content(reason, full):
    assert is_full_reason(reason) is full, reason_weight(reason)


def test_the_form_takes_a_16_character_chinese_reason_and_refuses_a_thin_english_one(app, db, story):
    no = file_no(db, story.files["alice"][0])
    charlie = browser(app, "charlie", "zh-CN")
    thin = post(charlie, "/access-requests/new", {"file_no": no, "reason": "need it now", "scope": "view",
                                                  "hours": "4"}, from_page="/access-requests/new")
    assert thin.status_code == 400 and "请把理由写完整" in thin.text
    full = post(charlie, "/access-requests/new", {"file_no": no, "reason": "客户来电询问积分余额和生日礼品。",
                                                  "scope": "view", "hours": "4"},
                from_page="/access-requests/new")
    assert full.status_code == 303


def test_the_minimum_is_a_setting_shared_by_form_and_alert(settings, db, story):
    app = create_app(dataclasses.replace(settings, grant_reason_min=60))
    no = file_no(db, story.files["alice"][0])
    charlie = browser(app, "charlie", "en")
    r = post(charlie, "/access-requests/new", {"file_no": no, "reason": "Customer asked about her points balance",
                                               "scope": "view", "hours": "4"}, from_page="/access-requests/new")
    assert r.status_code == 400
    assert "at least 60 letters, or 30 Chinese characters" in r.text
    dave = browser(app, "dave", "en")
    assert "thinner than 60 letters or 30 Chinese characters" in dave.get("/audit/alerts").text


# ---------------------------------------------------------------- every action has words

def _audited_actions() -> set[str]:
    """Every action the code writes to the log: the policy's actions and the literal codes given
    to audit.record (found in the source, so a new one cannot be forgotten)."""
    import ast
    from pathlib import Path

    from portal.policy import Action

    found = {a.value for a in Action}
    root = Path(__import__("portal").__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            f = getattr(node, "func", None)
            if (isinstance(node, ast.Call) and isinstance(f, ast.Attribute) and f.attr == "record"
                    and isinstance(f.value, ast.Name) and f.value.id == "audit" and len(node.args) > 2):
                for c in ast.walk(node.args[2]):
                    if isinstance(c, ast.Constant) and isinstance(c.value, str) and re.fullmatch(r"[a-z_]+\.[a-z_.]+", c.value):
                        found.add(c.value)
    return found


def test_every_audited_action_is_said_in_words_in_both_languages():
    from portal import i18n
    from portal.audit import wording

    @dataclasses.dataclass
    class Entry:
        action: str
        object_type: str = "customer"
        object_id: str = "755 00001"
        fields: str = ""
        outcome: str = "allowed"
        reason: str = ""
        detail: str = ""
        grant_id: int | None = None

    actions = _audited_actions()
    assert {"complaint.work", "credit.sell", "privacy.erase", "user.setup_code"} <= actions
    unsaid = [a for a in sorted(actions) if "no description" in wording.describe(Entry(a)).what.message]
    assert not unsaid, f"audit actions without words (add them to portal/audit/wording_work.py): {unsaid}"
    # A detail the words understand is said, codes included, in Chinese.
    token = i18n.current_locale.set("zh_CN")
    try:
        said = wording.describe(Entry("complaint.work", object_id="3", detail="tell -> told (file 755 00008)"))
        assert said.detail_said and said.what.render(i18n.gettext) == "处理投诉 #3（档案 755 00008）：已告知会员"
        tier = wording.describe(Entry("member.tier", detail="regular -> gold (upgrade)")).what.render(i18n.gettext)
        assert "金卡" in tier and "gold" not in tier
    finally:
        i18n.current_locale.reset(token)
