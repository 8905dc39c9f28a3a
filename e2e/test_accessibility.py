"""The main pages of each role pass axe-core with no serious or critical violation, in Simplified
Chinese and in English; and a Chinese page shows none of the English the catalogue translates.

axe-core is vendored for the tests only (e2e/vendor/axe-core-4.14.1.min.js, MPL-2.0, from npm's
`axe-core` package); it is never served to users. It is given to the browser as an init script,
which the browser runs outside the page's Content-Security-Policy: `page.add_script_tag` would
insert an inline script that the portal's CSP (rightly) refuses, and bypassing the CSP would test
a page users never get. One sign-in per role; the English pass asks for English through the
Accept-Language header, so no account's stored language changes.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import Page

from .conftest import first_file_of, sign_in

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core-4.14.1.min.js"
ZH_PO = Path(__import__("portal").__file__).parent / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"
FILE = "{file}"  # alice's first file, filled in at run time
PAGES = {
    "alice": ["/", "/customers", FILE, "/customers/new", FILE + "/purchases/new", "/access-requests/new",
              "/reports/overview"],
    "bob": ["/", "/approvals", "/reports/classes", "/customers"],
    "cathy": ["/", "/service", "/service/applications", "/complaints"],
    "dave": ["/", "/audit", "/audit/alerts", "/reports/audit"],
    "erin": ["/", "/admin/users", "/admin/units", "/programme"],
}
SERIOUS = ("serious", "critical")
# A code shown where words belong ("cash_on_delivery", "military_police"); dotted audit codes
# ("auth.sign_in") are shown on purpose, beside their words.
RAW_CODE = re.compile(r"(?<![\w.])[a-z]+(?:_[a-z]+)+(?![\w.])")


def _english_ui_strings() -> list[str]:
    """The catalogue's English sentences and phrases that Chinese pages show translated (two words
    or more, no placeholders): one of them on a Chinese page is a string that escaped translation."""
    with ZH_PO.open("rb") as fh:
        catalog = read_po(fh, locale="zh_CN")
    out = []
    for m in catalog:
        if not m.id or not isinstance(m.id, str) or not m.string or m.string == m.id:
            continue
        if "%" in m.id or " " not in m.id.strip() or len(m.id) < 8:
            continue
        out.append(m.id)
    return out


def _axe_problems(page: Page) -> list[str]:
    found = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       where: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    return [f"{v['impact']} {v['id']}: {v['help']} at {v['where']}" for v in found if v["impact"] in SERIOUS]


def _visible_text(page: Page) -> str:
    """What a reader sees, without code shown as code and the link to the other language."""
    return page.evaluate("""() => {
        const body = document.body.cloneNode(true);
        body.querySelectorAll('code, script, template, [lang="en"], dialog:not([open])').forEach(e => e.remove());
        return body.innerText;
    }""")


@pytest.mark.parametrize("user", list(PAGES))
def test_main_pages_are_accessible_in_both_languages_and_chinese_pages_speak_chinese(new_context, server, user):
    context = new_context()
    context.add_init_script(path=str(AXE))
    # Every navigation here also evaluates axe-core (about 0.5 MB) before its load event, and the
    # English pass sends each request through a route handler: on a busy CI machine a page can
    # take longer than the other tests' 10 s (seen on PostgreSQL with both xdist workers busy).
    context.set_default_navigation_timeout(30_000)
    page = context.new_page()
    sign_in(page, user)  # the browser asks for zh-CN
    file_id, _ = first_file_of(server, "alice")
    english = _english_ui_strings()
    problems: list[str] = []
    for lang in ("zh-CN", "en"):
        if lang == "en":  # (the browser's own locale would win over set_extra_http_headers)
            context.route("**/*", lambda route: route.continue_(
                headers={**route.request.headers, "accept-language": "en"}))
        for path in [p.replace(FILE, f"/customers/{file_id}") for p in PAGES[user]]:
            page.goto(path)
            page.wait_for_load_state()
            want = "zh-CN" if lang == "zh-CN" else "en"
            assert page.locator("html").get_attribute("lang") == want, f"{path} is not marked {want}"
            problems += [f"{lang} {path}: {p}" for p in _axe_problems(page)]
            if lang == "zh-CN":
                text = _visible_text(page)
                problems += [f"zh-CN {path}: English left untranslated: {s!r}" for s in english if s in text]
                problems += [f"zh-CN {path}: a code instead of words: {c!r}" for c in set(RAW_CODE.findall(text))]
                if "尚无说明" in text:
                    problems.append(f"zh-CN {path}: an audit entry without words")
    if user == "alice":  # the sign-in page, before anyone signs in
        visitor = new_context()
        visitor.add_init_script(path=str(AXE))
        anonymous = visitor.new_page()
        anonymous.goto("/login")
        problems += [f"/login: {p}" for p in _axe_problems(anonymous)]
    assert not problems, "\n".join(problems)
