"""Lists and search over customer files: keyset pages in any of the offered orders, filters,
scoped in SQL by the policy, masked rows (duplicate checks: duplicates.py).

A page is read by one statement per shape (order, direction, cursor or not, the scope's arms,
the search's columns, the filters), built once with bound parameters and run on the driver's
cursor of the caller's transaction (driver_sql.Prebuilt); rows come back as plain tuples and are opened with the
AES-GCM objects directly. read_page() only reads: the caller appends the audit entry
(``Page.audit``) and commits it before showing anything (views/customers.py does it in its own
short write transaction, so on SQLite the writer lock is held for the append alone).
"""
from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Integer, bindparam, case, literal, false, or_, select, true, tuple_, type_coerce, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from .. import subject_keys
from ..driver_sql import Prebuilt
from ..sql_hints import no_index as _no_index
from ..access.models import AccessRequest
from ..accounts.actor import Actor
from ..accounts.models import User
from ..membership.models import Membership
from ..org.models import OrgUnit
from ..policy import Action
from ..policy.actions import Relation
from ..policy.scope import arm_clause, arm_values, scope_shape, subtree_range
from ..vault import Vault, VaultError
from . import rules, search
from .models import CustomerFile
from .service import AuditNote, FileSummary

# ---------------------------------------------------------------- what the list shows

SORTS = ("created", "file_no", "category", "tier", "owner")
TIERS = ("regular", "silver", "gold", "platinum")
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")

_F = CustomerFile.__table__.c
_M = Membership.__table__.c
_U = User.__table__.c
_K = subject_keys.CustomerKey.__table__.c
_A = AccessRequest.__table__.c
_O = OrgUnit.__table__.c
_TIER_RANK = case({t: i + 1 for i, t in enumerate(TIERS)}, value=_M.tier, else_=0)


@dataclass(frozen=True)
class ListQuery:
    """Order and filters of a list, as they travel in its URL (no personal data in them)."""

    sort: str = "created"
    direction: str = "desc"
    category: str = ""
    tier: str = ""  # a tier, "none" (not a member) or "" (any)
    owner: str = ""  # a username (leaders)
    granted: bool = False  # only files someone holds an active grant on

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> "ListQuery":
        """Read the URL's parameters; anything unknown falls back to the default."""
        def get(k):
            return (params.get(k) or "").strip()
        return cls(sort=get("sort") if get("sort") in SORTS else "created",
                   direction="asc" if get("dir") == "asc" else "desc",
                   category=get("category") if get("category") in {c.value for c in rules.Category} else "",
                   tier=get("tier") if get("tier") in (*TIERS, "none") else "",
                   owner=get("owner").lower() if _USERNAME.fullmatch(get("owner").lower()) else "",
                   granted=get("granted") == "1")

    def params(self, **over) -> dict[str, str]:
        """The non-default parameters (for links that keep the state), with ``over`` applied."""
        q = replace(self, **over)
        out = {"sort": q.sort if q.sort != "created" else "", "dir": q.direction if q.direction != "desc" else "",
               "category": q.category, "tier": q.tier, "owner": q.owner, "granted": "1" if q.granted else ""}
        return {k: v for k, v in out.items() if v}

    @property
    def filtered(self) -> bool:
        return bool(self.category or self.tier or self.owner or self.granted)

    def describe(self) -> str:
        """For the audit entry: which order and filters (no personal data)."""
        return " ".join(f"{k}={v}" for k, v in self.params().items())


def _key(sort: str) -> list:
    """The columns a sort orders by; the last ones make each position unique (keyset paging)."""
    return {"created": [_F.created_at, _F.id],
            "file_no": [_F.file_no, _F.id],
            "category": [_F.category, _F.created_at, _F.id],
            "tier": [_TIER_RANK, _F.created_at, _F.id],
            "owner": [_U.username, _F.created_at, _F.id]}[sort]


def _cursor_encode(sort: str, values) -> str:
    def one(v):
        if isinstance(v, datetime):
            return ["t", v.isoformat()]
        if isinstance(v, uuid.UUID):
            return ["u", str(v)]
        return ["v", v]
    raw = json.dumps([sort, *map(one, values)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _cursor_decode(token: str, sort: str) -> tuple | None:
    """The key values of the last row shown, or None for a cursor of another order or a bad one."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
        if not isinstance(raw, list) or raw[0] != sort or len(raw) != len(_key(sort)) + 1:
            return None
        conv = {"t": datetime.fromisoformat, "u": uuid.UUID, "v": lambda v: v}
        return tuple(conv[t](v) for t, v in raw[1:])
    except (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError, AttributeError):
        return None


@dataclass
class Page:
    rows: list[FileSummary]
    next_cursor: str | None
    query_kind: str = ""  # "", "file_no", "mobile", "id_number", "name", "mobile_tail", "unsupported"
    # The audit entry the caller must append and commit before showing the rows.
    audit: AuditNote | None = None


# ---------------------------------------------------------------- statements, built once per shape

@dataclass(frozen=True)
class _Shape:
    sort: str
    desc: bool
    after: bool
    arms: tuple | None  # the scope's relations, LED as ("led", number of units); None: every file
    grant_scopes: tuple[str, ...]
    terms: tuple[str, ...]  # the blind-index columns the search matches (any of them)
    category: bool
    tier: str  # "", "none" or "some"
    owner: bool
    granted: bool
    owner_only: bool


_STATEMENTS: dict[_Shape, Prebuilt] = {}
_ROW = (_F.id, _F.file_no, _F.category, _F.gender, _F.created_at, _F.name_ct, _F.mobile_ct,
        type_coerce(_F.erased_at.is_not(None), Integer), _M.tier, _U.username,
        type_coerce(_K.customer_id.is_not(None), Integer), _K.key_ct)
# Where each value sits in a row (plain tuples: no per-row objects until the page's own).
ID, FILE_NO, CATEGORY, GENDER, CREATED, NAME_CT, MOBILE_CT, ERASED, TIER, OWNER, KEY_ROW, KEY_CT = range(len(_ROW))
_TIER_RANKS = {t: i + 1 for i, t in enumerate(TIERS)}
_ROWS_FROM = (CustomerFile.__table__.outerjoin(Membership.__table__, _M.customer_id == _F.id)
              .join(User.__table__, _U.id == _F.owner_id)
              .outerjoin(subject_keys.CustomerKey.__table__, _K.customer_id == _F.id))


def _walk_from(sort: str):
    t = CustomerFile.__table__
    if sort == "tier":
        t = t.outerjoin(Membership.__table__, _M.customer_id == _F.id)
    if sort == "owner":
        t = t.join(User.__table__, _U.id == _F.owner_id)
    return t


def _statement(shape: _Shape) -> Prebuilt:
    """Up to :lim rows in the list's order after the cursor: one index walk per (scope arm,
    walked search column), each in order and limited, merged by the outer query (an OR of them
    cannot be walked in order). Selective search columns (an exact mobile, ID number, file
    number or full name) are one walk over their own index with the whole scope as its filter."""
    stmt = _STATEMENTS.get(shape)
    if stmt is not None:
        return stmt
    key = _key(shape.sort)
    order = [c.desc() if shape.desc else c.asc() for c in key]
    lim = bindparam("lim", type_=Integer, required=True)
    conds = []
    if shape.category:
        conds.append(_F.category == bindparam("f_category", required=True))
    if shape.tier == "none":
        conds.append(~_F.id.in_(select(_M.customer_id)))
    elif shape.tier:
        conds.append(_F.id.in_(select(_M.customer_id).where(_M.tier == bindparam("f_tier", required=True))))
    if shape.owner:
        conds.append(_F.owner_id.in_(select(_U.id).where(_U.username == bindparam("f_owner", required=True))))
    if shape.granted:
        conds.append(_F.id.in_(select(_A.file_id).where(
            _A.status == "approved", _A.revoked_at.is_(None), _A.expires_at > bindparam("f_now", required=True))))
    if shape.owner_only:
        conds.append(_F.owner_id == bindparam("f_me", required=True))
    if shape.after:
        after = tuple_(*(bindparam(f"k{i}", type_=c.type, required=True) for i, c in enumerate(key)))
        conds.append(tuple_(*key) < after if shape.desc else tuple_(*key) > after)
    cols = dict(owner=_F.owner_id, unit_path=_F.unit_path, file_id=_F.id)
    if shape.arms is None:
        arms = [(None, true())]
    else:
        arms = []
        for rel in shape.arms:
            if isinstance(rel, tuple):
                # The led subtree one unit at a time (the units are read within the subtree's
                # range, see _Reader): each an equality that walks (…, unit_path, created_at, id).
                arms += [(Relation.LED, _F.unit_path == bindparam(f"unit{i}", required=True)) for i in range(rel[1])]
            else:
                arms.append((rel, arm_clause(rel, shape.grant_scopes, **cols)))
        arms = arms or [(None, false())]
    terms = [(col, bindparam(f"term{i}", required=True)) for i, col in enumerate(shape.terms)]
    selective = [_F[col] == value for col, value in terms if col in search.SELECTIVE]
    walked = [(col, value) for col, value in terms if col not in search.SELECTIVE]
    pairs = [(or_(*(clause for _, clause in arms)), or_(*selective))] if selective else []
    # A file granted to the actor is found by its id among the grants, never by walking all the
    # files that share a surname or the mobile's last digits (the index a planner may prefer).
    pairs += [(clause, (_no_index(_F[col]) if rel is Relation.GRANTED else _F[col]) == value)
              for col, value in walked for rel, clause in arms]
    if not terms:
        pairs = [(clause, true()) for _, clause in arms]
    if len(pairs) == 1:
        arm, term = pairs[0]
        stmt = select(*_ROW).select_from(_ROWS_FROM).where(arm, term, *conds)
    else:
        ids = union_all(*(select(sub.c.id) for sub in (
            select(_F.id).select_from(_walk_from(shape.sort)).where(arm, term, *conds)
            .order_by(*order).limit(lim).subquery()
            for arm, term in pairs)))
        stmt = select(*_ROW).select_from(_ROWS_FROM).where(_F.id.in_(ids))
    stmt = stmt.order_by(*order).limit(lim)
    if len(_STATEMENTS) > 512:
        _STATEMENTS.clear()
    stmt = _STATEMENTS[shape] = Prebuilt(stmt)  # run on the driver's cursor (driver_sql.py)
    return stmt


_UNITS = Prebuilt(select(_O.path).where(_O.path >= bindparam("lo", required=True),
                                        _O.path < bindparam("hi", required=True)).order_by(_O.path))


class _Reader:
    """One page's statement and parameters; run() fetches up to ``lim`` rows after a cursor."""

    def __init__(self, conn: Connection, actor: Actor, lq: ListQuery, sq: search.Query, owner_only: bool):
        shape = scope_shape(actor, Action.CUSTOMER_LIST)
        params: dict[str, object] = {}
        arms = None
        grant_scopes: tuple[str, ...] = ()
        if shape is not None:
            rels, grant_scopes = shape
            params.update(arm_values(actor))
            arms = []
            for rel in rels:
                if rel is Relation.LED:
                    paths = [p for (p,) in _UNITS.all(conn, {"lo": params["scope_lo"], "hi": params["scope_hi"]})]
                    params.update({f"unit{i}": p for i, p in enumerate(paths)})
                    arms.append(("led", len(paths)))
                else:
                    arms.append(rel)
            arms = tuple(arms)
        for i, (_, value) in enumerate(sq.terms):
            params[f"term{i}"] = value
        tier = "none" if lq.tier == "none" else "some" if lq.tier else ""
        params.update(f_category=lq.category, f_tier=lq.tier, f_owner=lq.owner, f_me=actor.user_id)
        if lq.granted:
            params["f_now"] = params.get("scope_now") or arm_values(actor)["scope_now"]
        self.conn, self.params, self.sort = conn, params, lq.sort
        shape = _Shape(sort=lq.sort, desc=lq.direction == "desc", after=False, arms=arms,
                            grant_scopes=grant_scopes, terms=tuple(col for col, _ in sq.terms),
                            category=bool(lq.category), tier=tier, owner=bool(lq.owner), granted=lq.granted,
                            owner_only=owner_only)
        self.shapes = (shape, replace(shape, after=True))

    def run(self, after: tuple | None, lim: int) -> list:
        params = {**self.params, "lim": lim}
        if after is not None:
            params.update({f"k{i}": v for i, v in enumerate(after)})
        return _statement(self.shapes[after is not None]).all(self.conn, params)


def _key_of(row, sort: str) -> tuple:
    """The values of _key(sort) for a row, from the row itself."""
    if sort == "created":
        return row[CREATED], row[ID]
    if sort == "file_no":
        return row[FILE_NO], row[ID]
    first = {"category": row[CATEGORY], "tier": _TIER_RANKS.get(row[TIER], 0), "owner": row[OWNER]}[sort]
    return first, row[CREATED], row[ID]


_LIST_FIELDS = ("name", "mobile")


def _opened(vault: Vault, rows) -> list[tuple]:
    """(row, name, mobile) for each row, opened with the AES-GCM objects directly."""
    open_row = vault.open_row
    return [(r, *open_row(search.TABLE, r[ID], _LIST_FIELDS, (r[NAME_CT], r[MOBILE_CT]), key_read=r[KEY_ROW],
                          wrapped_key=r[KEY_CT]))
            for r in rows]


def _mobile_ends_with(vault: Vault, r, tail: str) -> bool:
    """Confirm a truncated-index candidate: open its mobile (within the caller's scope)."""
    try:
        (mobile,) = vault.open_row(search.TABLE, r[ID], ("mobile",), (r[MOBILE_CT],), key_read=r[KEY_ROW],
                                   wrapped_key=r[KEY_CT])
    except VaultError:
        return False
    return bool(mobile) and mobile.endswith(tail)


def _summaries(opened) -> list[FileSummary]:
    mask_name, mask_mobile = rules.mask_name, rules.mask_mobile
    return [FileSummary(id=r[ID], file_no=r[FILE_NO], name=mask_name(name or ""), mobile=mask_mobile(mobile or ""),
                        category=r[CATEGORY], gender=r[GENDER], owner=r[OWNER], created_at=r[CREATED],
                        tier=r[TIER] or "", erased=bool(r[ERASED]))
            for r, name, mobile in opened]


def read_page(conn: Connection, vault: Vault, actor: Actor, *, q: str = "", cursor: str | None = None,
              limit: int = 50, owner_only: bool = False, query: ListQuery | None = None) -> Page:
    """A page in the chosen order (newest first by default), keyset-paginated, filtered, scoped in
    SQL by the policy, masked. Reads only: ``Page.audit`` is the entry to append and commit
    before anything is shown (a list, or a search)."""
    lq = query or ListQuery()
    sq = search.read_query(vault, q)
    if sq.kind == "unsupported":
        return Page(rows=[], next_cursor=None, query_kind=sq.kind,
                    audit=AuditNote("customer.search", detail="unsupported query"))
    after = _cursor_decode(cursor, lq.sort) if cursor else None
    reader = _Reader(conn, actor, lq, sq, owner_only)
    if sq.tail is None:
        opened = _opened(vault, reader.run(after, limit + 1))
    else:
        # The truncated index narrows to about 1/1,024 of the scope; decrypting confirms.
        opened, chunk = [], max(200, 4 * (limit + 1))
        while len(opened) <= limit:
            batch = reader.run(after, chunk)
            opened += _opened(vault, [r for r in batch if _mobile_ends_with(vault, r, sq.tail)])
            if len(batch) < chunk:
                break
            after = _key_of(batch[-1], lq.sort)
        opened = opened[:limit + 1]
    more = len(opened) > limit
    opened = opened[:limit]
    rows = _summaries(opened)
    described = lq.describe()
    if sq.kind:
        note = AuditNote("customer.search", object_type="customer",
                         object_id=",".join(r.file_no for r in rows[:10]), fields=tuple(sq.fields),
                         detail=f"{len(rows)} result(s)" + (f"; {described}" if described else ""))
    else:
        note = AuditNote("customer.list", object_type="customer", fields=_LIST_FIELDS,
                         detail=f"{len(rows)} masked row(s)" + (f"; {described}" if described else ""))
    return Page(rows=rows, next_cursor=_cursor_encode(lq.sort, _key_of(opened[-1][0], lq.sort))
                if more and opened else None, query_kind=sq.kind, audit=note)


def list_files(s: Session, vault: Vault, actor: Actor, *, q: str = "", cursor: str | None = None,
               limit: int = 50, owner_only: bool = False, query: ListQuery | None = None) -> Page:
    """read_page() and its audit entry, in the caller's (write) transaction."""
    page = read_page(s.connection(), vault, actor, q=q, cursor=cursor, limit=limit, owner_only=owner_only,
                     query=query)
    page.audit.record(s, actor)
    return page


_OWNERS = Prebuilt(select(_U.username).select_from(User.__table__.join(OrgUnit.__table__, _O.id == _U.unit_id))
                   .where(_O.path >= bindparam("lo", required=True), _O.path < bindparam("hi", required=True),
                          _U.role.in_([literal("salesperson"), literal("leader")]))
                   .order_by(_U.username))


def owner_choices(conn: Connection | Session, actor: Actor) -> list[str]:
    """For a leader: the usernames of the staff in the units they lead (the owner filter and sort)."""
    if actor.role != "leader" or not actor.unit_path:
        return []
    lo, hi = subtree_range(actor.unit_path)
    conn = conn.connection() if isinstance(conn, Session) else conn
    return [name for (name,) in _OWNERS.all(conn, {"lo": lo, "hi": hi})]


# Duplicate detection lives in duplicates.py; its names still import from here.
from .duplicates import Duplicate, check_duplicates, find_by_contact  # noqa: E402,F401
