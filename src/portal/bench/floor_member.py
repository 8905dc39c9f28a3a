"""The floor of a member's file page (src/portal/bench/floor.py has the rest): what its membership
section reads and shows, done the plain way.

- member_read: through the raw driver, each statement written once: the membership; its card
  accounts and their cards; per account the whole points ledger (the redeemable and expiring
  points are figured from it), the latest 100 stored-value entries and 20 redemptions; the latest
  100 events with their actors' names; the 30 latest purchases and their lines; 30 coupons; the
  spend of the tier window (one SUM);
- render_member: a plain autoescaped Jinja2 page of the card's facts and a table per history
  (points, stored value, redemptions, events, purchases), as many rows as member_read found.

`rows["member"]` says how many history rows that page shows.
"""
from __future__ import annotations

import uuid
from typing import Callable

from jinja2 import Environment

MEMBER_PAGE = """<section><h2>{{ m.tier }}</h2>{% for a in accounts %}<article><h3>{{ a.number }}</h3>
<dl><dt>Issued</dt><dd>{{ a.issued }}</dd><dt>Expires</dt><dd>{{ a.expires }}</dd><dt>Points</dt>
<dd>{{ a.points }}</dd><dt>Stored value</dt><dd>{{ a.stored }}</dd></dl>{% endfor %}
{% for title, rows in tables %}<h4>{{ title }}</h4><table><tbody>
{% for r in rows %}<tr>{% for c in r %}<td>{{ c }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>{% endfor %}</section>"""


def member_parts(raw, member_file_id: str, cpu_per_op: Callable) -> tuple[dict, int]:
    """{member_read, render_member} in µs, and the number of history rows shown."""
    cid = member_file_id if not raw.sqlite else uuid.UUID(member_file_id).hex
    one = ("SELECT id, tier, tier_floor, tier_ceiling, status, joined_on, last_purchase_on, spend_counted_from "
           "FROM membership WHERE customer_id = ?")
    accounts_sql = ("SELECT id, card_type, status, named, issued_on, expires_on, points_balance, stored_value_fen "
                    "FROM card_account WHERE membership_id = ? ORDER BY id")
    cards_sql = "SELECT id, number, status FROM member_card WHERE account_id = ? ORDER BY id DESC"
    points_sql = ("SELECT id, kind, points, \"on\", expires_on, lot_id, ref, note FROM points_entry "
                  "WHERE account_id = ? ORDER BY id")
    stored_sql = ("SELECT id, kind, amount_fen, \"on\", ref, note FROM stored_value_entry WHERE account_id = ? "
                  "ORDER BY id DESC LIMIT 100")
    redemptions_sql = ("SELECT id, \"on\", item_name, points, value_fen FROM redemption WHERE account_id = ? "
                       "ORDER BY id DESC LIMIT 20")
    events_sql = ("SELECT e.at, e.kind, e.from_value, e.to_value, e.cause, e.reason, u.username FROM member_event e "
                  "LEFT JOIN user_account u ON u.id = e.actor_id WHERE e.membership_id = ? ORDER BY e.id DESC LIMIT 100")
    purchases_sql = ("SELECT id, purchased_on, status, paid_total_fen FROM purchase WHERE customer_id = ? "
                     "ORDER BY purchased_on DESC, id DESC LIMIT 30")
    coupons_sql = ("SELECT id, code, kind, status, amount_fen, valid_until FROM coupon WHERE membership_id = ? "
                   "ORDER BY id DESC LIMIT 30")
    spend_sql = ("SELECT COALESCE(SUM(paid_total_fen), 0) FROM purchase WHERE customer_id = ? AND status = 'complete' "
                 "AND purchased_on >= ?")

    def read() -> dict:
        m = raw.one(one, (cid,))
        if m is None:
            return {}
        accounts = []
        for a in raw.all(accounts_sql, (m[0],)):
            points = raw.all(points_sql, (a[0],))
            accounts.append({"a": a, "cards": raw.all(cards_sql, (a[0],)), "points": points[-100:][::-1],
                             "stored": raw.all(stored_sql, (a[0],)),
                             "redemptions": raw.all(redemptions_sql, (a[0],))})
        purchases = raw.all(purchases_sql, (cid,))
        lines = []
        if purchases:
            marks = ",".join("?" * len(purchases))
            lines = raw.all(f"SELECT purchase_id, line_no, product, quantity, paid_fen FROM purchase_line "
                            f"WHERE purchase_id IN ({marks}) ORDER BY purchase_id, line_no", [p[0] for p in purchases])
        return {"m": m, "accounts": accounts, "events": raw.all(events_sql, (m[0],)), "purchases": purchases,
                "lines": lines, "coupons": raw.all(coupons_sql, (m[0],)),
                "spend": raw.one(spend_sql, (cid, m[5]))[0]}

    got = read()
    if not got:
        return {}, 0
    page = Environment(autoescape=True).from_string(MEMBER_PAGE)
    accounts = [{"number": (x["cards"][0][1] if x["cards"] else ""), "issued": str(x["a"][4]),
                 "expires": str(x["a"][5]), "points": f"{x['a'][6]:,}", "stored": f"{x['a'][7] / 100:,.2f}"}
                for x in got["accounts"]]
    tables = []
    for x in got["accounts"]:
        tables += [("Points", [(str(r[3]), r[1], f"{r[2]:+,}", r[6] or "", str(r[4] or ""), r[7]) for r in x["points"]]),
                   ("Stored value", [(str(r[3]), r[1], f"{r[2] / 100:,.2f}", r[4] or "", r[5]) for r in x["stored"]]),
                   ("Redemptions", [(str(r[1]), r[2], f"{r[3]:,}", f"{r[4] / 100:,.2f}") for r in x["redemptions"]])]
    tables += [("History", [(str(r[0])[:16], r[1], r[2] or "", r[3] or "", r[4] or "", r[5] or "", r[6] or "system")
                            for r in got["events"]]),
               ("Purchases", [(str(r[1]), r[2], f"{r[3] / 100:,.2f}") for r in got["purchases"]]
                + [(str(r[0]), r[1], r[2], r[3], f"{r[4] / 100:,.2f}") for r in got["lines"]]),
               ("Coupons", [(r[1], r[2], r[3], f"{r[4] / 100:,.2f}", str(r[5])) for r in got["coupons"]])]
    shown = sum(len(rows) for _, rows in tables)
    m = {"tier": got["m"][1]}
    return {"member_read": cpu_per_op(read),
            "render_member": cpu_per_op(lambda: page.render(m=m, accounts=accounts, tables=tables))}, shown
