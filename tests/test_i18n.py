"""Translation catalogs: complete, consistent with the source, and wired into portal.i18n.

When a test here fails because a string is untranslated, run `scripts/update-catalogs`,
translate the new entries in src/portal/locale/zh_CN/LC_MESSAGES/messages.po, and re-run.
Strings that are not literal _() calls (role names, error messages the views pass through
gettext(str(exc))) are kept in that catalog with the comment "#. dynamic".
"""
from __future__ import annotations

import ast
import re
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.pofile import read_po

from portal import i18n

ROOT = Path(__file__).resolve().parents[1]
LOCALE_DIR = ROOT / "src" / "portal" / "locale"
POT = LOCALE_DIR / "messages.pot"
ZH_PO = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po"
BABEL_CFG = ROOT / "babel.cfg"
# The same keywords as scripts/update-catalogs (pybabel adds -k keywords to its defaults).
KEYWORDS = {**DEFAULT_KEYWORDS, **parse_keywords(["_", "gettext", "ngettext:1,2"])}

HOW_TO_FIX = ("run scripts/update-catalogs, then translate the listed strings in "
              "src/portal/locale/zh_CN/LC_MESSAGES/messages.po")


def _read(path: Path, locale: str | None = None):
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


@pytest.fixture(scope="module")
def pot():
    return _read(POT)


@pytest.fixture(scope="module")
def zh():
    return _read(ZH_PO, locale="zh_CN")


def _strings(value) -> tuple[str, ...]:
    return value if isinstance(value, (tuple, list)) else (value,)


def _singular(msgid) -> str:
    return _strings(msgid)[0]


def _translated(zh, msgid: str, context: str | None = None) -> bool:
    m = zh.get(msgid, context)
    return m is not None and not m.fuzzy and all(_strings(m.string))


def _report(title: str, items) -> str:
    return f"{title} ({HOW_TO_FIX}):\n" + "\n".join(f"  {x}" for x in items)


# ---------------------------------------------------------------- (a) complete, not fuzzy

def test_every_template_message_has_a_chinese_translation(pot, zh):
    missing = [_singular(m.id) for m in pot if m.id and not _translated(zh, _singular(m.id), m.context)]
    assert not missing, _report("messages without a zh_CN translation", missing)


def test_no_fuzzy_entries(zh):
    assert not zh.fuzzy, "the zh_CN catalog header is marked fuzzy"
    fuzzy = [_singular(m.id) for m in zh if m.id and m.fuzzy]
    assert not fuzzy, _report("fuzzy zh_CN entries (check and remove the fuzzy flag)", fuzzy)


def test_chinese_catalog_has_no_empty_entries(zh):
    empty = [_singular(m.id) for m in zh if m.id and not all(_strings(m.string))]
    assert not empty, _report("zh_CN entries with an empty msgstr", empty)


# ---------------------------------------------------------------- (b) placeholders

# Any %-format directive, including %% and named ones such as %(n)s.
_DIRECTIVE = re.compile(r"%(?:\((?P<name>[^)]*)\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?[diouxXeEfFgGcrsa%]")


def _directives(text: str) -> tuple[Counter, list[str]]:
    named, positional = Counter(), []
    for m in _DIRECTIVE.finditer(text):
        if m.group("name") is not None:
            named[m.group(0)] += 1
        else:
            positional.append(m.group(0))
    return named, positional


def test_placeholders_match(zh):
    bad = []
    for m in zh:
        if not m.id:
            continue
        ids = _strings(m.id)
        for i, text in enumerate(_strings(m.string)):
            source = ids[min(i, len(ids) - 1)]
            if _directives(source) != _directives(text):
                bad.append(f"{source!r} -> {text!r}")
    assert not bad, _report("placeholders differ between msgid and msgstr", bad)


def test_translations_format_like_their_msgids(zh):
    """Jinja's newstyle gettext always applies %: a stray % in a translation would crash a page."""
    bad = []
    for m in zh:
        if not m.id:
            continue
        for source, text in zip(_strings(m.id), _strings(m.string)):
            names = {n.group("name") for n in _DIRECTIVE.finditer(source) if n.group("name")}
            values = {n: 1 for n in names} | {"num": 1}
            try:
                source % values
            except (TypeError, ValueError, KeyError):
                continue  # not a %-format string in the first place
            try:
                text % values
            except (TypeError, ValueError, KeyError) as exc:
                bad.append(f"{source!r} -> {text!r}: {exc}")
    assert not bad, _report("translations that fail %-formatting", bad)


# ---------------------------------------------------------------- (c) in step with the source

def _extract_from_source() -> dict[tuple[str, str | None], list[str]]:
    """Every msgid in src/ and templates/, extracted in-process exactly as the script does."""
    with BABEL_CFG.open() as fh:
        method_map, options_map = parse_mapping_cfg(fh, str(BABEL_CFG))
    found: dict[tuple[str, str | None], list[str]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS):
        msgid = _singular(message)
        if msgid:
            found.setdefault((msgid, context), []).append(f"{filename}:{lineno}")
    return found


def test_extraction_sees_templates_and_code():
    found = _extract_from_source()
    places = {p.split(":")[0] for locs in found.values() for p in locs}
    assert any(p.startswith("templates/") for p in places), "nothing extracted from templates/"
    assert any(p.startswith("src/") for p in places), "nothing extracted from src/"
    assert ("Sign in", None) in found


def test_every_string_in_the_source_is_translated(zh):
    found = _extract_from_source()
    missing = [f"{msgid!r}  ({', '.join(locs)})" for (msgid, ctx), locs in sorted(found.items())
               if not _translated(zh, msgid, ctx)]
    assert not missing, _report("strings in the source without a zh_CN translation", missing)


# ---------------------------------------------------------------- dynamic strings

def _message_of(fn, *args, **kwargs) -> str | None:
    try:
        fn(*args, **kwargs)
    except ValueError as exc:
        return str(exc)
    return None


def _runtime_messages() -> set[str]:
    """User-facing texts produced by the domain code (the views show gettext(str(exc)))."""
    from portal.accounts import passwords
    from portal.accounts import service as accounts
    from portal.accounts.models import Role
    from portal.audit import service as audit
    from portal.customers import rules
    from portal.customers import service as customers
    from portal.org import service as org

    today = date(2025, 6, 1)
    first17 = "11010119900307123"
    good_id = first17 + rules.id_check_char(first17)
    bad_check = first17 + next(c for c in "0123456789X" if c != good_id[-1])
    msgs = {r.value for r in Role} | {audit.ALLOWED, audit.DENIED}
    msgs |= {
        _message_of(rules.normalise_mobile, ""),
        _message_of(rules.normalise_mobile, "12345"),
        _message_of(rules.normalise_id_number, "", today=today),
        _message_of(rules.normalise_id_number, "12345", today=today),
        _message_of(rules.normalise_id_number, "110101199013401234", today=today),
        _message_of(rules.normalise_id_number, "110101299901011234", today=today),
        _message_of(rules.normalise_id_number, "110101189901011234", today=today),
        _message_of(rules.normalise_id_number, bad_check, today=today),
        _message_of(rules.parse_gender, ""),
        _message_of(rules.parse_gender, "x"),
        _message_of(rules.parse_birthday, "soon", today=today),
        _message_of(rules.parse_birthday, "2999-01-01", today=today),
        _message_of(rules.parse_birthday, "1899-12-31", today=today),
        _message_of(rules.parse_category, ""),
        _message_of(rules.parse_category, "nonsense"),
        _message_of(rules.normalise_name, ""),
        _message_of(rules.normalise_name, "x" * (rules.NAME_MAX_LENGTH + 1)),
        _message_of(rules.normalise_name, "a\x01b"),
        _message_of(passwords.check_password_rule, "short"),
        _message_of(passwords.check_password_rule, "passwordpassword"),
        _message_of(passwords.check_password_rule, "alice-has-a-long-password", username="alice"),
        # Both checks run before the session is touched.
        _message_of(accounts.add_user, None, "Not Valid!", "admin", "HQ", "x"),
        _message_of(org.add_unit, None, "bad code!", "Unit"),
        _message_of(org.add_unit, None, "A1", ""),
    }
    try:
        customers.validate_form({}, today=today)
    except customers.InvalidInput as exc:
        msgs |= set(exc.errors.values())
    long_form = {"name": "王小明", "gender": "M", "mobile": "13812345678", "category": "individual",
                 "id_number": good_id, "birthday": "1990-03-08",
                 **{k: "x" * (limit + 1) for k, limit in customers.LIMITS.items()}}
    try:
        customers.validate_form(long_form, today=today)
    except customers.InvalidInput as exc:
        msgs |= set(exc.errors.values())
    msgs |= set(audit.parse_filter({"since": "yesterday", "until": "2025-13-01"})[1].values())
    msgs.discard(None)
    return msgs


def test_runtime_messages_are_translated(zh):
    msgs = _runtime_messages()
    assert "This field is required." in msgs and "At most 2000 characters." in msgs
    missing = sorted(m for m in msgs if not _translated(zh, m))
    assert not missing, _report("user-facing messages from the domain code without a translation "
                                "(add them with '#. dynamic')", missing)


# Calls whose message is shown translated later (views: gettext(str(exc)); the inbox:
# gettext(notice.message, **params)), and the position of the message argument.
_MESSAGE_ARG = {"InvalidField": 2, "AccountError": 1, "OrgError": 1, "WeakPassword": 0, "notify": 3}
# Error classes that take {field: message}.
_MESSAGE_DICT = {"InvalidInput", "InvalidRequest"}
# Command-line tools speak English only.
_NOT_WEB = {"demo.py", "migrate.py"}  # and the cli/ package
# f-string messages that embed a user's value: no msgid can match them (see the i18n report).
KNOWN_UNTRANSLATABLE = {
    # Pure membership ledger (no page shows these yet; they name amounts and references).
    "{} must be a whole number of at least 1.",
    "Purchase {} has only {} fen left to refund.",
}


def _message_nodes(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name in _MESSAGE_DICT and node.args and isinstance(node.args[0], ast.Dict):
                yield from node.args[0].values
            elif name in _MESSAGE_ARG:
                pos = _MESSAGE_ARG[name]
                if len(node.args) > pos:
                    yield node.args[pos]
                yield from (k.value for k in node.keywords if k.arg == "message")
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if (isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name)
                        and t.value.id == "errors"):
                    yield node.value


def test_error_messages_in_the_code_are_translated(zh):
    """Literal error messages must be in the catalog; f-string ones need a translated concrete
    variant (e.g. "At most 200 characters.") or a place in KNOWN_UNTRANSLATABLE."""
    msgids = [m.id for m in zh if m.id and isinstance(m.id, str) and _translated(zh, m.id)]
    missing, unmatched = [], []
    for path in sorted((ROOT / "src" / "portal").rglob("*.py")):
        if path.name in _NOT_WEB or path.parent.name == "cli":
            continue
        where = path.relative_to(ROOT)
        for node in _message_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if not _translated(zh, node.value):
                    missing.append(f"{node.value!r}  ({where}:{node.lineno})")
            elif isinstance(node, ast.JoinedStr):
                parts = [v.value if isinstance(v, ast.Constant) else None for v in node.values]
                shape = "".join("{}" if p is None else p for p in parts)
                if shape in KNOWN_UNTRANSLATABLE:
                    continue
                pattern = re.compile("".join(".+?" if p is None else re.escape(p) for p in parts))
                if not any(pattern.fullmatch(m) for m in msgids):
                    unmatched.append(f"{shape!r}  ({where}:{node.lineno})")
    problems = []
    if missing:
        problems.append(_report("error messages without a translation (add them with '#. dynamic')",
                                missing))
    if unmatched:
        problems.append(_report(
            "f-string error messages with no translated variant: add the exact texts users can "
            "see with '#. dynamic', or, if they embed user input, make them translatable (or list "
            "them in KNOWN_UNTRANSLATABLE)", unmatched))
    assert not problems, "\n".join(problems)


def _is_built_string(node: ast.AST) -> bool:
    """An f-string, "..." % x, "..." + x or "...".format(x): text no catalog can hold."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        return any(isinstance(side, (ast.Constant, ast.JoinedStr)) and not isinstance(
            getattr(side, "value", None), (int, float)) for side in (node.left, node.right))
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format" and isinstance(node.func.value, ast.Constant))


def test_gettext_is_never_given_a_built_string():
    """_(f"...{x}") is skipped by extraction and can never match a msgid: pass variables instead,
    as in _("Intact: %(n)s entries.", n=count)."""
    bad = []
    for path in sorted((ROOT / "src" / "portal").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name in ("_", "gettext", "ngettext") and any(_is_built_string(a) for a in node.args[:2]):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)[:100]}")
    assert not bad, "gettext called with a built string (use named %(...)s variables):\n" + "\n".join(bad)


def test_dynamic_entries_are_in_the_template(pot, zh):
    """scripts/update-catalogs copies '#. dynamic' entries into the .pot; none may be lost."""
    lost = [m.id for m in zh if m.id and "dynamic" in m.auto_comments and m.id not in pot]
    assert not lost, _report("dynamic entries missing from messages.pot", lost)


# ---------------------------------------------------------------- (d) negotiation

@pytest.mark.parametrize(("user", "header", "expected"), [
    (None, "zh-CN,zh;q=0.9", "zh_CN"),
    (None, "en-US,en;q=0.8", "en"),
    (None, "en;q=0.5, zh-TW;q=0.9", "zh_CN"),
    ("en", "zh-CN,zh;q=0.9", "en"),
    ("zh_CN", "en-US,en;q=0.8", "zh_CN"),
    (None, None, i18n.DEFAULT_LOCALE),
    (None, "", i18n.DEFAULT_LOCALE),
    (None, "fr-FR,de;q=0.8", i18n.DEFAULT_LOCALE),
    (None, ";;,;q=abc,***", i18n.DEFAULT_LOCALE),
    ("klingon", "\x00garbage;q=zz", i18n.DEFAULT_LOCALE),
])
def test_negotiate(user, header, expected):
    assert i18n.negotiate(user, header) == expected


def test_negotiate_falls_back_to_the_given_default():
    assert i18n.negotiate(None, "garbage", default="en") == "en"
    assert i18n.negotiate(None, "garbage", default="xx") == i18n.DEFAULT_LOCALE


# ---------------------------------------------------------------- (e) the running translation

def test_gettext_uses_the_current_locale():
    token = i18n.current_locale.set("zh_CN")
    try:
        assert i18n.gettext("Sign in") == "登录"
        assert i18n.gettext("Intact: %(n)s entries.", n=7) == "完整：共 7 条记录。"
        assert i18n.gettext("salesperson") == "销售人员"
        assert i18n.gettext("Customer files") == "客户档案"
    finally:
        i18n.current_locale.reset(token)
    token = i18n.current_locale.set("en")
    try:
        assert i18n.gettext("Sign in") == "Sign in"
        assert i18n.gettext("Intact: %(n)s entries.", n=7) == "Intact: 7 entries."
    finally:
        i18n.current_locale.reset(token)


def test_messages_with_values_and_shipped_names_are_said_in_the_readers_language():
    """'The username alice is taken.' in Chinese, the programme's default names translated, a
    discount as each language says it; names nobody translated are shown as typed."""
    from portal.accounts.service import AccountError
    from portal.org.service import OrgError

    token = i18n.current_locale.set("zh_CN")
    try:
        assert i18n.error_text(AccountError("username", "The username %(username)s is taken.", username="alice")) \
            == "用户名 alice 已被占用。"
        assert i18n.error_text(OrgError("code", "Unit code %(code)s is already in use.", code="755A")) \
            == "机构代码 755A 已被使用。"
        assert i18n.data_label("Standard card") == "标准卡" and i18n.data_label("¥100 gift") == "¥100 礼品"
        assert i18n.data_label("茅台 10% 特惠装") == "茅台 10% 特惠装"
        assert i18n.discount_text(950) == "9.5折" and i18n.discount_text(1000) == "无"
    finally:
        i18n.current_locale.reset(token)
    token = i18n.current_locale.set("en")
    try:
        assert str(AccountError("username", "The username %(username)s is taken.", username="alice")) \
            == "The username alice is taken."
        assert i18n.discount_text(950) == "5% off" and i18n.discount_text(880) == "12% off"
        assert i18n.discount_text(955) == "4.5% off"
    finally:
        i18n.current_locale.reset(token)


def test_the_templates_underscore_renders_as_jinja2s_newstyle_gettext():
    """`_()` in templates is called directly (views/rendering.template_gettext): same text, same
    escaping of the variables, same %% handling as jinja2's alias, in both languages."""
    from jinja2.ext import _gettext_alias

    from portal.app import _jinja_env
    from portal.views import rendering
    env = _jinja_env()
    src = ('{{ _("Application of %(when)s for a %(card)s:", when="<b>", card="x&y") }}|'
           '{{ _("Membership") }}|{{ _("100%% <i>") }}')
    for locale in i18n.LOCALES:
        token = i18n.current_locale.set(locale)
        try:
            env.globals["_"] = rendering.template_gettext
            ours = env.from_string(src).render()
            env.globals["_"] = _gettext_alias
            theirs = env.from_string(src).render()
        finally:
            i18n.current_locale.reset(token)
        assert ours == theirs and "&lt;b&gt;" in ours and "x&amp;y" in ours and "100% <i>" in ours


def test_a_files_field_labels_follow_each_requests_language():
    """The file card's words come from file_words() per render: a template module imported
    without context is cached, and words set at its top kept the first request's language."""
    from portal.app import _jinja_env
    env = _jinja_env()
    card = {"id": "f1", "allowed": {"customer.view", "customer.edit"}}
    seen = {}
    for locale in ("zh_CN", "en", "zh_CN"):
        token = i18n.current_locale.set(locale)
        try:
            html = env.get_template("customers/_field.html").render(
                field="name", value="x", card=card, editing=False, error="", csrf="t")
        finally:
            i18n.current_locale.reset(token)
        seen.setdefault(locale, set()).add(re.search(r'<span class="label">([^<]*)</span>', html).group(1))
    assert seen == {"zh_CN": {i18n.translations("zh_CN").gettext("Full name")}, "en": {"Full name"}}
