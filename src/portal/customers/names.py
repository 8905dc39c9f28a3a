"""Names for search: normalising a name, finding its surname, reading "王总" as a surname and a title.

Pure rules (no database, no keys). The blind indexes of customers.search are computed from
what these functions return, so changing them means running `portal customers reindex`.
"""
from __future__ import annotations

import re
import unicodedata

# Two-character surnames: a name starting with one of these has it as its surname ("欧阳修" is
# 欧阳 + 修, not 欧 + 阳修). The common ones; a rarer one is found as a full name.
COMPOUND_SURNAMES = frozenset((
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
    "夏侯", "轩辕", "令狐", "端木", "独孤", "南宫", "西门", "百里", "呼延", "闻人", "申屠", "太史",
    "钟离", "澹台", "公冶", "宗政", "濮阳", "淳于", "单于", "赫连", "万俟", "司空", "拓跋", "第五",
))

# How staff speak of a client: surname + title ("王总", "李经理", "张老师"), or 老/小 + surname.
TITLES = (
    "总经理", "董事长", "副总", "总监", "经理", "主任", "局长", "处长", "科长", "部长", "厅长",
    "院长", "校长", "行长", "书记", "主席", "老板", "先生", "女士", "小姐", "太太", "夫人",
    "老师", "教授", "医生", "大夫", "律师", "博士", "师傅", "阿姨", "总", "董", "工", "姐", "哥",
)
PREFIXES = ("老", "小", "阿")

_SPACE = re.compile(r"\s+")


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or "\U00020000" <= ch <= "\U0003134f"


def normalise(raw: str) -> str:
    """The form that is indexed and searched: NFKC (full-width letters become plain), case folded,
    whitespace collapsed to one space, middle dots unified ("阿卜杜·热合曼")."""
    s = unicodedata.normalize("NFKC", raw or "").casefold()
    s = s.replace("•", "·").replace("・", "·").replace("．", "·")
    return _SPACE.sub(" ", s).strip()


def surname_of(name: str) -> str | None:
    """The surname of a normalised name: a compound surname, else the first character of a
    Chinese name; the last word of a name written in Latin letters with a space ("john smith"
    -> "smith"); None for a one-word Latin name or an empty one."""
    if not name:
        return None
    if _is_cjk(name[0]):
        if name[:2] in COMPOUND_SURNAMES and len(name) > 2:
            return name[:2]
        return name[0] if len(name) > 1 else None
    words = name.split(" ")
    return words[-1] if len(words) > 1 else None


def _could_be_surname(q: str) -> bool:
    if not q:
        return False
    if all(_is_cjk(ch) for ch in q):
        return len(q) == 1 or q in COMPOUND_SURNAMES
    return " " not in q and q.isalpha()


def _strip_title(q: str) -> str:
    """"王总" -> "王", "欧阳经理" -> "欧阳", "老王" -> "王"; a longer remainder keeps the title."""
    for title in TITLES:
        if q.endswith(title) and len(q) > len(title):
            rest = q[: -len(title)]
            if _could_be_surname(rest):
                return rest
    for prefix in PREFIXES:
        if q.startswith(prefix) and len(q) == len(prefix) + 1 and _is_cjk(q[-1]):
            return q[len(prefix):]
    return q


def query_terms(raw: str) -> tuple[set[str], set[str]]:
    """(full names, surnames) a search-box text may mean, normalised.

    "王建国" -> ({"王建国"}, set()); "王" -> ({"王"}, {"王"}); "王总" -> ({"王总"}, {"王"});
    "欧阳" -> ({"欧阳"}, {"欧阳"}); "smith" -> ({"smith"}, {"smith"}). A text that holds a
    digit is never a name.
    """
    q = normalise(raw)
    if not q or any(ch.isdigit() for ch in q) or len(q) > 50:
        return set(), set()
    names = {q}
    for title in TITLES:  # "王建国先生" is 王建国 too
        if q.endswith(title) and len(q) - len(title) >= 2:
            names.add(q[: -len(title)].strip())
            break
    surnames = set()
    stripped = _strip_title(q)
    for t in {q, stripped}:
        if _could_be_surname(t):
            surnames.add(t)
    return names, surnames


def looks_like_name(raw: str) -> bool:
    """A letter-only text (Chinese or Latin, spaces and middle dots allowed) of 1..50 characters."""
    q = normalise(raw)
    return bool(q) and len(q) <= 50 and all(ch.isalpha() or ch in " ·'-" for ch in q)


_TAIL = re.compile(r"[0-9]{4}")


def mobile_tail(raw: str) -> str | None:
    """The four digits of a "last four of the mobile" search, else None."""
    q = unicodedata.normalize("NFKC", raw or "").strip()
    return q if _TAIL.fullmatch(q) else None
