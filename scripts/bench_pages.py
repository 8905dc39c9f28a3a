"""The pages `make bench` drives with wrk, their targets, and the work each one does (its floor).

A row: key, label, who signs in (None: nobody), the path (filled from bench_server.Targets and the
first page's cursor), its group (the targets it is checked against), the server CPU per request
it must stay under at 1M files on one worker (issue 16), and the parts of its floor: the work
alone, as src/portal/bench/floor.py measures it, plus the framework's share (a bare /healthz on
the same server, which every page pays too).

Other issues add their pages to EXTRA_PAGES at the bottom (with their own group and target);
a page without floor parts is shown without a ratio.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    key: str
    label: str
    who: str | None
    path: str
    group: str
    cpu_target_ms: float | None = None  # server CPU per request, 1M files, one worker
    floor: tuple[str, ...] = ()          # floor.py parts; "healthz" is added for every page
    audited: bool = False                # writes an audit entry before it answers


LIST_FLOOR = ("session", "list_walk", "keys_50", "aes_list", "audit_append", "render_50")

PAGES = [
    Page("healthz", "/healthz (bare)", None, "/healthz", "framework"),
    Page("welcome", "smallest signed-in page (/welcome)", "alice", "/welcome", "small", 0.4,
         ("session", "render_small")),
    Page("list", "salesperson list (50 masked rows, newest first)", "alice", "/customers", "list", 2.0,
         LIST_FLOOR, True),
    Page("list_next", "salesperson list, next page (keyset cursor)", "alice", "/customers?after={cursor}",
         "list", 2.0, LIST_FLOOR, True),
    Page("team_list", "leader's team list (subtree)", "bob", "/customers", "list", 2.0,
         ("session", "team_walk", "keys_50", "aes_list", "audit_append", "render_50"), True),
    Page("search_mobile", "exact search by mobile", "alice", "/customers?q={mobile}", "search", 1.5,
         ("session", "find_mobile", "audit_append", "render_{find_mobile}"), True),
    Page("search_id", "exact search by ID number", "alice", "/customers?q={id_number}", "search", 1.5,
         ("session", "find_id", "audit_append", "render_{find_id}"), True),
    # Keyed blind indexes of the full name and the surname (customers/search.py), walked per
    # unit of the leader's subtree; the name travels in the URL here only for wrk.
    Page("search_name", "search by name (leader, full name)", "bob", "/customers?q={name}", "search", 1.5,
         ("session", "find_name", "audit_append", "render_{find_name}"), True),
    Page("search_surname", "search by surname (leader, 王总)", "bob", "/customers?q={surname}", "surname", 5.0,
         ("session", "find_surname", "audit_append", "render_{find_surname}"), True),
    Page("file", "file page (decrypt + audit row)", "alice", "/customers/{file_id}", "file", 2.0,
         ("session", "file_read", "aes_file", "audit_append", "render_file"), True),
    # Alice's active member with the longest points history (the demo's, or a seeded one with two
    # years of purchases): the card, its ledgers, events and purchases, and the card actions.
    Page("file_member", "member's file page (card, histories, actions)", "alice", "/customers/{member_file_id}",
         "file", 2.0, ("session", "file_read", "aes_file", "member_read", "audit_append", "render_file",
                       "render_member"), True),
]

# Two workers against one, on the audited pages (issue 16: ≥ 1.6× on two free cores).
SCALING_PAGES = ("list", "file")
SCALING_TARGET = 1.6
RATIO_TARGET = 3.0  # server CPU per request ≤ 3 × the work alone
RSS_TARGET_MB = 300  # `portal serve --workers 2`, peak under load

# ---------------------------------------------------------------- pages of other issues
# Append rows here: Page(key, label, who, path, group, cpu_target_ms, floor parts, audited).
# Paths may use {cursor}, {mobile}, {id_number}, {file_id}, {member_file_id}, {name}, {surname}.
EXTRA_PAGES: list[Page] = [
    # Member service and sales on credit (issues 11 and 12), as a leader over his units: the
    # seeded files bring no complaints, visits or receivables of their own, so these rows measure
    # each page's scoped query and frame over the demo's facts, not a realistic volume of them.
    Page("complaints", "complaints queue (leader)", "bob", "/complaints", "service", 5.0),
    Page("visits", "visits due (leader)", "bob", "/visits", "service", 5.0),
    Page("receivables", "overdue board (leader)", "bob", "/receivables", "credit", 5.0),
    # The home pages (everyday work): today's reminders, birthdays, visits and tasks in scope.
    Page("home_sales", "home page (salesperson)", "alice", "/", "home", 5.0),
    Page("home_leader", "home page (leader)", "bob", "/", "home", 5.0),
]


def all_pages() -> list[Page]:
    return PAGES + EXTRA_PAGES


def floor_parts(page: Page, rows: dict[str, int]) -> list[str]:
    """The page's floor parts with render_{find_x} resolved to the rows that search found."""
    out = []
    for part in page.floor:
        if part.startswith("render_{"):
            n = rows.get(part[len("render_{"):-1], 1) or 1
            part = f"render_{n}"
        out.append(part)
    return out


def floor_ms(page: Page, floor: dict | None, healthz_cpu_ms: float | None) -> tuple[float | None, dict]:
    """The page's work alone in ms (framework included) and its parts in µs; None if unknown."""
    if not floor or not page.floor and page.key != "healthz":
        return None, {}
    parts = {p: floor["parts"].get(p) for p in floor_parts(page, floor.get("rows", {}))}
    if any(v is None for v in parts.values()) or healthz_cpu_ms is None:
        return None, parts
    return healthz_cpu_ms + sum(parts.values()) / 1000, parts
