"""The cost of a page's work alone, measured on the seeded database: the floor `make bench` sets
each page's server CPU against (issue 16: within three times of it).

Each part is the work itself done the cheapest plain way, with no framework, ORM or template
machinery around it: SQL through the raw driver (sqlite3 / psycopg) with the statement written
once, AES-GCM through `AESGCM` objects, SHA-256 through hashlib, a plain Jinja2 table. CPU time
of this process (time.process_time) per operation, the median of several rounds; like the
server's CPU per request it leaves out PostgreSQL's own processes.

Parts (µs per operation):
- session: one indexed read of a session row (primary key);
- list_walk / team_walk: the raw index walk for 51 rows of alice's list (owner, newest first, with
  the member's tier) / of bob's team list (one walk per unit of his subtree plus his own files,
  merged, 51 rows);
- keys_50: the 50 listed customers' own data keys (one read by primary keys);
- aes_list: AES-GCM × 150: 50 customer keys unwrapped (and their AESGCM objects built), 100
  fields (name and mobile) opened;
- find_mobile / find_id / find_name / find_surname: HMAC of the search term, the indexed read of
  the matching rows (≤ 51; a surname walked per arm of bob's scope, as the list walks it), their
  keys, and their names and mobiles opened;
- file_read / aes_file: the file, its key and its owner in one indexed read / its key unwrapped
  and its 8 fields opened;
- audit_append: BEGIN, UPDATE audit_head ... RETURNING, SHA-256 of the entry (chain.entry_hash),
  INSERT, UPDATE audit_head, COMMIT: a real entry ("bench.floor"), so the chain stays whole;
- render_N / render_file / render_small: a plain autoescaped Jinja2 table of N rows of 7 cells /
  a list of 14 labelled fields / a page with a heading and a few links;
- member_read / render_member (with a member's file in the targets): its membership section read
  and shown (floor_member.py).

`python -m portal.bench.floor --targets JSON` prints {"parts": {name: µs}, "rows": {...}} as JSON
(PORTAL_DATABASE_URL and PORTAL_KEY_FILE as for `portal`).
"""
from __future__ import annotations

import argparse
import base64
import json
import statistics
import time
import uuid
from datetime import datetime, timezone
from typing import Callable

from jinja2 import Environment

from ..audit.chain import entry_hash
from ..config import Settings
from ..db import is_sqlite, sqlite_path
from ..vault import _HEADER, _SUBJECT_HEAD, SUBJECT_VERSION, KeyRing, keyed_index

LIST_COLS = ("f.id, f.file_no, f.category, f.gender, f.owner_id, f.created_at, f.name_ct, "
             "f.mobile_ct, m.tier, f.erased_at")
LIST_FROM = "customer_file f LEFT JOIN membership m ON m.customer_id = f.id"
ORDER = "ORDER BY f.created_at DESC, f.id DESC LIMIT 51"

TABLE_50 = """<table><thead><tr><th>File</th><th>Name</th><th>Mobile</th><th>Category</th><th>Tier</th>
<th>Owner</th><th>Created</th></tr></thead><tbody>
{% for r in rows %}<tr><td><a href="/customers/{{ r.id }}">{{ r.file_no }}</a></td><td>{{ r.name }}</td>
<td>{{ r.mobile }}</td><td>{{ r.category }}</td><td>{{ r.tier }}</td><td>{{ r.owner }}</td>
<td>{{ r.created }}</td></tr>
{% endfor %}</tbody></table>"""
FILE_PAGE = """<h1>{{ f.file_no }}</h1><dl>{% for label, value in fields %}<dt>{{ label }}</dt>
<dd>{{ value }}</dd>{% endfor %}</dl>"""
SMALL_PAGE = """<html><head><title>{{ title }}</title></head><body><nav>{% for href, label in links %}
<a href="{{ href }}">{{ label }}</a>{% endfor %}</nav><h1>{{ title }}</h1><p>{{ user }}</p></body></html>"""


def cpu_per_op(op: Callable[[], object], rounds: int = 5, budget: float = 0.15) -> float:
    """CPU µs per call of op: the median over `rounds` rounds of about `budget` CPU seconds."""
    op()  # warm (caches, statement preparation)
    t0 = time.process_time()
    n = 0
    while time.process_time() - t0 < 0.02:
        op()
        n += 1
    per = (time.process_time() - t0) / n
    iters = max(5, int(budget / max(per, 1e-7)))
    out = []
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(iters):
            op()
        out.append((time.process_time() - t0) / iters * 1e6)
    return round(statistics.median(out), 2)


class Raw:
    """The raw driver connection: sqlite3 or psycopg, one statement style ('?' placeholders)."""

    def __init__(self, url: str):
        self.sqlite = is_sqlite(url)
        if self.sqlite:
            import sqlite3
            self.conn = sqlite3.connect(str(sqlite_path(url)), isolation_level=None, check_same_thread=False)
            for pragma in ("busy_timeout=30000", "synchronous=NORMAL", "foreign_keys=ON"):  # as db.py
                self.conn.execute(f"PRAGMA {pragma}")
        else:
            import psycopg
            from sqlalchemy.engine import make_url
            u = make_url(url)
            self.conn = psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password,
                                        dbname=u.database, autocommit=True)

    def sql(self, text: str) -> str:
        return text if self.sqlite else text.replace("?", "%s")

    def all(self, text: str, params=()) -> list:
        cur = self.conn.cursor()
        cur.execute(self.sql(text), params)
        rows = cur.fetchall()
        cur.close()
        return rows

    def one(self, text: str, params=()):
        rows = self.all(text, params)
        return rows[0] if rows else None


def _uuid(v) -> uuid.UUID:
    return v if isinstance(v, uuid.UUID) else uuid.UUID(str(v))


class Opener:
    """AES-GCM the plain way: the ring's AESGCM objects, a customer's key unwrapped once."""

    def __init__(self, ring: KeyRing):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        self.AESGCM = AESGCM
        self.ring = {kid: AESGCM(k) for kid, k in ring.data_keys.items()}

    def unwrap(self, key_ct: bytes, customer_id: uuid.UUID):
        blob = bytes(key_ct)
        _v, kid = _HEADER.unpack_from(blob)
        raw = self.ring[kid].decrypt(blob[3:15], blob[15:], f"customer_key\x1fkey\x1f{customer_id}".encode())
        return self.AESGCM(base64.b64decode(raw))

    def open(self, blob: bytes | None, aead, column: str, row_id: uuid.UUID) -> str:
        if blob is None:
            return ""
        blob = bytes(blob)
        aad = f"customer_file\x1f{column}\x1f{row_id}".encode()
        if blob[0] == SUBJECT_VERSION:
            if aead is None:  # the customer's key was shredded (an erased file): nothing to open
                return ""
            return aead.decrypt(blob[_SUBJECT_HEAD:_SUBJECT_HEAD + 12], blob[_SUBJECT_HEAD + 12:], aad).decode()
        _v, kid = _HEADER.unpack_from(blob)
        return self.ring[kid].decrypt(blob[3:15], blob[15:], aad).decode()


def _keys(raw: Raw, ids: list) -> dict:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return dict(raw.all(f"SELECT customer_id, key_ct FROM customer_key WHERE customer_id IN ({marks})", ids))


def _open_rows(opener: Opener, rows: list, keys: dict) -> list[tuple[str, str]]:
    out = []
    for r in rows:
        fid = _uuid(r[0])
        aead = opener.unwrap(keys[r[0]], fid) if keys.get(r[0]) is not None else None
        out.append((opener.open(r[6], aead, "name", fid), opener.open(r[7], aead, "mobile", fid)))
    return out


def measure(url: str, key_file, targets: dict, *, rounds: int = 5) -> dict:
    """Every part on this database; `targets` names alice's and bob's users, the file, the terms."""
    ring = KeyRing.load(key_file)
    raw = Raw(url)
    opener = Opener(ring)
    parts: dict[str, float] = {}
    rows_found: dict[str, int] = {}
    uid = {name: raw.one("SELECT id FROM user_account WHERE username = ?", (name,))[0]
           for name in ("alice", "bob")}

    # The session read: a real session row by its primary key (any; the server signed people in).
    key = raw.one("SELECT id FROM web_session ORDER BY last_seen_at DESC LIMIT 1")
    if key is not None:
        parts["session"] = cpu_per_op(lambda: raw.one(
            "SELECT user_id, created_at, last_seen_at, stage FROM web_session WHERE id = ?", key))
    else:
        parts["session"] = cpu_per_op(lambda: raw.one(
            "SELECT id, username, role, unit_id, is_active FROM user_account WHERE id = ?", (uid["alice"],)))

    # Alice's list: the walk, the keys, AES-GCM × 150.
    walk_sql = f"SELECT {LIST_COLS} FROM {LIST_FROM} WHERE f.owner_id = ? {ORDER}"
    parts["list_walk"] = cpu_per_op(lambda: raw.all(walk_sql, (uid["alice"],)))
    rows = raw.all(walk_sql, (uid["alice"],))[:50]
    ids = [r[0] for r in rows]
    parts["keys_50"] = cpu_per_op(lambda: _keys(raw, ids))
    keys = _keys(raw, ids)
    parts["aes_list"] = cpu_per_op(lambda: _open_rows(opener, rows, keys))
    rows_found["list"] = len(rows)

    # Bob's team list: one walk per unit of his subtree and his own files, merged.
    path = raw.one("SELECT u.path FROM org_unit u JOIN user_account a ON a.unit_id = u.id WHERE a.id = ?",
                   (uid["bob"],))[0]
    from ..policy.scope import subtree_range
    subtree = subtree_range(path)
    paths = [p for (p,) in raw.all("SELECT path FROM org_unit WHERE path >= ? AND path < ?", subtree)]
    arms = [("f.owner_id = ?", uid["bob"])] + [("f.unit_path = ?", p) for p in paths]
    inner = " UNION ALL ".join(
        f"SELECT * FROM (SELECT f.id FROM customer_file f WHERE {cond} {ORDER}) AS a{i}"
        for i, (cond, _) in enumerate(arms))
    team_sql = f"SELECT {LIST_COLS} FROM {LIST_FROM} WHERE f.id IN ({inner}) {ORDER}"
    team_params = tuple(p for _, p in arms)
    parts["team_walk"] = cpu_per_op(lambda: raw.all(team_sql, team_params))

    # Searches: HMAC, the indexed read of the matches, their keys, their names and mobiles.
    def finder(column: str, value, scope: str):
        """The matches of `column = value`: "" directly (an exact blind index), "subtree" with the
        leader's subtree as a filter (a selective index: a full name), "arms" walked per arm of
        his scope (own files, each unit of his subtree) newest first and merged, as the list
        walks a surname shared by many files."""
        per_arm = scope == "arms"
        if per_arm:
            walks = " UNION ALL ".join(
                f"SELECT * FROM (SELECT f.id FROM customer_file f WHERE f.{column} = ? AND {cond} {ORDER}) AS a{i}"
                for i, (cond, _) in enumerate(arms))
            sql = f"SELECT {LIST_COLS} FROM {LIST_FROM} WHERE f.id IN ({walks}) {ORDER}"
        else:
            extra = "AND f.unit_path >= ? AND f.unit_path < ?" if scope == "subtree" else ""
            sql = f"SELECT {LIST_COLS} FROM {LIST_FROM} WHERE f.{column} = ? {extra} {ORDER}"

        def params():
            v = value()
            if per_arm:
                return tuple(x for _, p in arms for x in (v, p))
            return (v, *subtree) if scope == "subtree" else (v,)

        def op():
            found = raw.all(sql, params())[:50]
            return _open_rows(opener, found, _keys(raw, [r[0] for r in found]))
        return op, len(raw.all(sql, params())[:50])

    from ..customers import names, rules
    from ..vault import Vault
    vault = Vault(ring)
    mobile = rules.normalise_mobile(targets["mobile"])
    id_number = rules.normalise_id_number(targets["id_number"])
    n_name = names.normalise(targets["name"])
    surname = names.surname_of(n_name)
    searches = {
        "find_mobile": ("mobile_bidx", lambda: vault.blind_index("mobile", mobile), ""),
        "find_id": ("id_number_bidx", lambda: vault.blind_index("id_number", id_number), ""),
        "find_name": ("name_bidx", lambda: keyed_index(vault, "name", n_name), "subtree"),
        "find_surname": ("surname_bidx", lambda: keyed_index(vault, "surname", surname), "arms"),
    }
    for part, (column, value, scope) in searches.items():
        op, n = finder(column, value, scope)
        parts[part] = cpu_per_op(op)
        rows_found[part] = n

    # The file page: one read with its key and owner; its key unwrapped and 8 fields opened.
    fid = targets["file_id"]
    fkey = fid if not raw.sqlite else uuid.UUID(fid).hex
    cts = ", ".join(f"f.{c}_ct" for c in ("name", "mobile", "id_number", "birthday", "address",
                                         "employer", "position", "notes"))
    file_sql = (f"SELECT f.id, f.file_no, f.category, f.gender, f.unit_path, f.created_at, {cts}, k.key_ct, "
                "u.username FROM customer_file f LEFT JOIN customer_key k ON k.customer_id = f.id "
                "JOIN user_account u ON u.id = f.owner_id WHERE f.id = ?")
    parts["file_read"] = cpu_per_op(lambda: raw.one(file_sql, (fkey,)))
    frow = raw.one(file_sql, (fkey,))
    fu = _uuid(frow[0])
    cols = ("name", "mobile", "id_number", "birthday", "address", "employer", "position", "notes")

    def open_file():
        aead = opener.unwrap(frow[14], fu) if frow[14] is not None else None  # None: under the ring key
        return [opener.open(frow[6 + i], aead, c, fu) for i, c in enumerate(cols)]
    parts["aes_file"] = cpu_per_op(open_file)
    if targets.get("member_file_id"):  # a member's file: its membership section (floor_member.py)
        from .floor_member import member_parts
        member, rows_found["member"] = member_parts(raw, targets["member_file_id"], cpu_per_op)
        parts.update(member)

    # The audit append: a real, chained entry in its own short transaction.
    parts["audit_append"] = cpu_per_op(lambda: _append(raw), rounds=rounds, budget=0.1)

    # Rendering: plain Jinja2, autoescaped, values ready.
    env = Environment(autoescape=True)
    table, page, small = (env.from_string(TABLE_50), env.from_string(FILE_PAGE), env.from_string(SMALL_PAGE))
    plain = _open_rows(opener, rows, keys)
    sample = [{"id": str(r[0]), "file_no": r[1], "name": n[0][:1] + "**", "mobile": n[1][:3] + "****" + n[1][-4:],
               "category": r[2], "tier": r[8] or "", "owner": "alice", "created": str(r[5])[:16]}
              for r, n in zip(rows, plain)]
    for n in sorted({1, 50, *rows_found.values()} - {0}):
        subset = (sample * 50)[:n]
        parts[f"render_{n}"] = cpu_per_op(lambda subset=subset: table.render(rows=subset))
    fields = [(c, v) for c, v in zip(cols, open_file())] + [("category", frow[2]), ("gender", frow[3]),
                                                             ("owner", frow[15]), ("unit", frow[4]),
                                                             ("created", str(frow[5])), ("file", frow[1])]
    parts["render_file"] = cpu_per_op(lambda: page.render(f={"file_no": frow[1]}, fields=fields))
    links = [(f"/{x}", x.title()) for x in ("customers", "access", "inbox", "account", "reports", "logout")]
    parts["render_small"] = cpu_per_op(lambda: small.render(title="Welcome", user="alice", links=links))
    raw.conn.close()
    return {"parts": parts, "rows": rows_found}


_AUDIT_COLS = ("seq", "at", "actor_id", "actor_username", "actor_role", "action", "object_type",
               "object_id", "fields", "outcome", "reason", "detail", "grant_id", "client_addr",
               "prev_hash", "hash")


def _append(raw: Raw) -> None:
    cur = raw.conn.cursor()
    cur.execute("BEGIN IMMEDIATE" if raw.sqlite else "BEGIN")
    try:
        cur.execute("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        seq, prev = cur.fetchone()
        at = datetime.now(timezone.utc).replace(tzinfo=None)
        values = (seq, at, None, "bench", "system", "bench.floor", "", "", "", "allowed", "", "", None, "")
        h = entry_hash(values, prev)
        stored_at = at.strftime("%Y-%m-%d %H:%M:%S.%f") if raw.sqlite else at
        cur.execute(raw.sql(f"INSERT INTO audit_event ({', '.join(_AUDIT_COLS)}) "
                            f"VALUES ({', '.join('?' * len(_AUDIT_COLS))})"),
                    (seq, stored_at, *values[2:], prev, h))
        cur.execute(raw.sql("UPDATE audit_head SET hash = ? WHERE id = 1"), (h,))
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    finally:
        cur.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="portal.bench.floor", description=__doc__.splitlines()[0])
    ap.add_argument("--targets", required=True,
                    help='JSON: {"mobile", "id_number", "file_id", "name", "surname", "member_file_id"} '
                         '(scripts/bench.py)')
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args(argv)
    st = Settings.from_env()
    print(json.dumps(measure(st.database_url, st.key_file, json.loads(a.targets), rounds=a.rounds)))


if __name__ == "__main__":
    main()
