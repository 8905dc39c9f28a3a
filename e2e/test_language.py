"""Flow 5: the portal speaks the browser's language (English or Simplified Chinese)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import shot, sign_in

ZH_PENDING = ("zh_CN catalog (src/portal/locale/zh_CN/LC_MESSAGES/messages.po) has no translation "
              "for 'Customer files' yet; it is being written concurrently")


@pytest.mark.browser_context_args(locale="en-US")
def test_english_browser_sees_english(page: Page):
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Sign in")
    sign_in(page, "amy")
    page.goto("/customers")
    expect(page.locator("h1")).to_have_text("Customer files")
    expect(page.locator("#results thead")).to_contain_text("Owner")
    page.goto("/customers/new")
    expect(page.locator("select[name=category]")).to_contain_text("Private enterprise")
    shot(page, "05-language-en")


def test_chinese_browser_sees_chinese(page: Page):
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    sign_in(page, "amy")
    # Labels that do not come from the gettext catalog are Chinese already.
    page.goto("/customers/new")
    expect(page.locator("select[name=category]")).to_contain_text("民营企业")
    page.goto("/customers")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    shot(page, "05-language-zh")
    if not re.fullmatch(r"\s*客户档案\s*", page.locator("h1").inner_text()):
        from .conftest import zh_catalog_ready

        if not zh_catalog_ready():
            pytest.xfail(ZH_PENDING)
    expect(page.locator("h1")).to_have_text("客户档案")


def test_language_switch_is_remembered(page: Page):
    """The top-bar switch changes the language at once and keeps it for the account."""
    sign_in(page, "fiona")  # only this test uses fiona: her stored preference affects no other test
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.locator("form[action='/preferences/language'] button[value=en]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(re.compile(r"/$"))  # the home page, where sign-in lands
    expect(page.locator("h1")).to_have_text("Today")
    page.goto("/customers")
    expect(page.locator("h1")).to_have_text("Customer files")
    page.goto("/customers/new")
    expect(page.locator("html")).to_have_attribute("lang", "en")  # stays, although the browser asks for zh-CN
    page.locator("form[action='/preferences/language'] button[value=zh_CN]").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page).to_have_url(re.compile(r"/customers/new$"))
