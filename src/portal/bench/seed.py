"""Bulk seeding for benchmarks: many realistic encrypted customer files and a chained audit log.

Plain functions (no Litestar), used by `portal bench seed N`. Rows go in with SQLAlchemy Core
executemany, one batch per transaction. Personal fields are encrypted with the application's
Vault under the same associated data (table "customer_file", column, row id) and the same
blind-index kinds as `customers.service._seal`, so the running portal opens, lists and finds
them like any other file. File numbers are taken from `file_number_sequence` in the batch's
transaction (so they stay unique and the sequence moves past them), and the audit rows are
chained with `audit.chain.entry_hash` and the head is moved under its row lock, so
`portal audit verify` passes.

People are made with the demo company's generators (names, addresses, employers, notes,
categories); mobile and ID numbers are derived from the file's ordinal through a bijection,
so they are unique across any number of seeding runs without remembering what was issued.

A region's file numbers run to 99,999 (`rules.FILE_SEQ_MAX`). When the demo regions cannot
hold N more files, extra regions (real Chinese area codes) with a team, four salespeople and
a leader each are added; files are spread over the salespeople in proportion to the room
left in their regions.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import random
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from .. import clock
from .. import demo
from ..accounts import service as accounts
from ..accounts.actor import Actor
from ..accounts.models import Role, User
from ..audit.chain import CHAINED, entry_hash
from ..audit.models import AuditEvent
from ..customers import rules, search, tally
from ..customers.models import PERSONAL_FIELDS, CustomerFile
from ..customers.service import TABLE
from ..db import Database
from ..org import service as org
from ..org.models import OrgUnit
from ..vault import KeyRing, Vault

BY = Actor.system("bench")

# Extra regions, added only when the demo's two cannot hold the files: (area code, city).
BENCH_REGIONS: tuple[tuple[str, str], ...] = (
    ("020", "广州"), ("021", "上海"), ("022", "天津"), ("023", "重庆"), ("024", "沈阳"),
    ("025", "南京"), ("027", "武汉"), ("028", "成都"), ("029", "西安"), ("0571", "杭州"),
    ("0532", "青岛"), ("0512", "苏州"), ("0731", "长沙"), ("0371", "郑州"), ("0591", "福州"),
    ("0871", "昆明"), ("0551", "合肥"), ("0311", "石家庄"), ("0451", "哈尔滨"), ("0898", "海口"),
    ("0771", "南宁"), ("0851", "贵阳"), ("0931", "兰州"), ("0991", "乌鲁木齐"),
)
BENCH_SALESPEOPLE_PER_REGION = 4
# A run's files are created over the two years before it (like the demo's), the last a day ago.
HISTORY = timedelta(days=730)

# Unique mobile and ID numbers from a file's ordinal: i -> (i * M + C) mod SPACE is a bijection
# when gcd(M, SPACE) == 1, and scatters consecutive ordinals over the whole space.
_MOBILE_SPACE = 10 ** 8
_MOBILE_MULT, _MOBILE_ADD = 7_777_777, 13_579_135
_DAYS = (demo.BORN_TO - demo.BORN_FROM).days + 1
_ID_SPACE = len(demo.AREA_CODES) * _DAYS * 500  # area x birthday x 500 sequence numbers per sex
_ID_MULT, _ID_ADD = 1_000_003, 24_680_246
assert math.gcd(_MOBILE_MULT, _MOBILE_SPACE) == 1 and math.gcd(_ID_MULT, _ID_SPACE) == 1
_MALE_DIGITS, _FEMALE_DIGITS = (1, 3, 5, 7, 9), (0, 2, 4, 6, 8)


class SeedError(RuntimeError):
    """The database is not ready for seeding (no demo company, no room for file numbers)."""


@dataclass(frozen=True)
class Owner:
    user_id: int
    username: str
    unit_id: int
    unit_path: str
    region: str


@dataclass
class SeedReport:
    files: int = 0
    audit_entries: int = 0
    seconds: float = 0.0
    regions_added: list[str] = field(default_factory=list)
    total_files: int = 0

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds if self.seconds else 0.0


# ---------------------------------------------------------------- people

def unique_mobile(ordinal: int, rnd: random.Random) -> str:
    suffix = (ordinal * _MOBILE_MULT + _MOBILE_ADD) % _MOBILE_SPACE
    return rnd.choice(demo.MOBILE_PREFIXES) + f"{suffix:08d}"


def unique_id_number(ordinal: int, gender: str):
    """(ID number, birthday) for the ordinal-th seeded person: distinct for distinct ordinals."""
    j = (ordinal * _ID_MULT + _ID_ADD) % _ID_SPACE
    area, rest = j % len(demo.AREA_CODES), j // len(demo.AREA_CODES)
    day, s500 = rest % _DAYS, rest // _DAYS
    born = demo.BORN_FROM + timedelta(days=day)
    digits = _MALE_DIGITS if gender == "M" else _FEMALE_DIGITS
    first17 = f"{demo.AREA_CODES[area]}{born:%Y%m%d}{(s500 // 5) * 10 + digits[s500 % 5]:03d}"
    return first17 + rules.id_check_char(first17), born


_CATS, _WEIGHTS = zip(*demo.CATEGORY_WEIGHTS.items())
_CUM = [sum(_WEIGHTS[:i + 1]) for i in range(len(_WEIGHTS))]


def person(ordinal: int, region: str, rnd: random.Random) -> dict[str, str | None]:
    """One customer's plain fields (the demo's generators; the demo's proportions)."""
    city = region if region in demo.CITIES else ("755" if ordinal % 2 else "010")
    category = rnd.choices(_CATS, cum_weights=_CUM)[0]
    gender = "M" if rnd.random() < 0.68 else "F"
    id_number, born = unique_id_number(ordinal, gender)
    if rnd.random() >= 0.9:
        id_number = None
    birthday = born if id_number or rnd.random() < 0.5 else None
    emp = demo.EMPLOYERS[category]
    employer = rnd.choice(emp[city])
    position = rnd.choice(emp["_positions"]) if employer or category == rules.Category.INDIVIDUAL else ""
    notes = rnd.choice(demo.NOTES) if rnd.random() < 0.7 else ""
    if notes and rnd.random() < 0.25:
        notes += f"；生日在 {born.month} 月，可安排生日礼"
    return {
        "name": demo._name(rnd, gender), "gender": gender, "category": str(category),
        "mobile": unique_mobile(ordinal, rnd), "id_number": id_number,
        "birthday": birthday.isoformat() if birthday else None,
        "address": demo._address(rnd, city), "employer": employer or None,
        "position": position or None, "notes": notes or None,
    }


# ---------------------------------------------------------------- owners and regions

def _region_code(s: Session, unit: OrgUnit) -> str:
    return org.region_of(s, unit).code


def owners(s: Session) -> list[Owner]:
    """Active salespeople of the demo company and of the bench regions, with their regions."""
    names = list(demo.SALESPEOPLE) + [_bench_username(code, k) for code, _ in BENCH_REGIONS
                                      for k in range(BENCH_SALESPEOPLE_PER_REGION)]
    out = []
    units = {u.id: u for u in org.all_units(s)}
    for u in s.scalars(select(User).where(User.username.in_(names), User.is_active.is_(True),
                                          User.role == Role.SALESPERSON).order_by(User.id)):
        unit = units[u.unit_id]
        out.append(Owner(u.id, u.username, unit.id, unit.path, _region_code(s, unit)))
    return out


def _bench_username(code: str, k: int) -> str:
    return f"s{code}{'abcdefgh'[k]}"


def room(s: Session, regions: set[str]) -> dict[str, int]:
    """File numbers still free in each region."""
    used = dict(s.execute(text("SELECT region_code, next_seq FROM file_number_sequence")).all())
    return {r: rules.FILE_SEQ_MAX - (used.get(r, 1) - 1) for r in regions}


def ensure_room(s: Session, n: int, password: str) -> list[str]:
    """Add bench regions (team, salespeople, leader) until the salespeople's regions can hold n more."""
    added: list[str] = []
    hq = s.scalar(select(OrgUnit).where(OrgUnit.parent_id.is_(None)).limit(1))
    current = owners(s)
    free = sum(room(s, {o.region for o in current}).values())
    for code, city in BENCH_REGIONS:
        if free >= n:
            break
        if org.unit_by_code(s, code) is not None:
            continue
        org.add_unit(s, code, f"{city}大区", hq.code, by=BY)
        org.add_unit(s, f"{code}A", f"{city}一组", code, by=BY)
        for k in range(BENCH_SALESPEOPLE_PER_REGION):
            accounts.add_user(s, _bench_username(code, k), Role.SALESPERSON, f"{code}A", password,
                              display_name=f"{city}销售{k + 1}", by=BY)
        accounts.add_user(s, f"l{code}", Role.LEADER, f"{code}A", password,
                          display_name=f"{city}组长", by=BY)
        added.append(code)
        free += room(s, {code})[code]
    if free < n:
        raise SeedError(f"no room for {n} more file numbers ({free} left in every region)")
    return added


def _split(n: int, free: dict[str, int]) -> dict[str, int]:
    """n files over regions in proportion to their free numbers (largest remainder), never past them."""
    total = sum(free.values())
    share = {r: n * f / total for r, f in free.items()}
    out = {r: min(int(v), free[r]) for r, v in share.items()}
    for r in sorted(share, key=lambda r: share[r] - int(share[r]), reverse=True):
        if sum(out.values()) >= n:
            break
        if out[r] < free[r]:
            out[r] += 1
    return out


def take_numbers(s: Session, region: str, k: int) -> int:
    """Reserve k consecutive file numbers in a region; returns the first (the row lock serialises takers)."""
    s.execute(text("INSERT INTO file_number_sequence (region_code, next_seq) VALUES (:r, 1) "
                   "ON CONFLICT (region_code) DO NOTHING"), {"r": region})
    first = s.execute(text("UPDATE file_number_sequence SET next_seq = next_seq + :k "
                           "WHERE region_code = :r RETURNING next_seq - :k"),
                      {"r": region, "k": k}).scalar_one()
    if first + k - 1 > rules.FILE_SEQ_MAX:
        raise SeedError(f"region {region} has no room for {k} more file numbers")
    return first


# ---------------------------------------------------------------- rows

AUDIT_KINDS = (
    # (action, fields, detail): what an owner typically does with a file.
    ("customer.create", None, ""),
    ("customer.view", ",".join(PERSONAL_FIELDS), ""),
    ("customer.list", "name,mobile", "50 masked row(s)"),
    ("customer.search", "mobile", "1 result(s)"),
)

_worker_vault: Vault | None = None


def _init_worker(key_file: str) -> None:
    global _worker_vault
    _worker_vault = Vault(KeyRing.load(Path(key_file)))


def make_files(vault: Vault, first_ordinal: int, owners_: list[Owner], seed: int,
               timeline: tuple[datetime, float]) -> list[dict]:
    """customer_file rows (all but file_no) for one batch: generated, encrypted, blind-indexed.

    timeline = (when the run's first file was created, seconds between files): a run's files
    are spread evenly, oldest first, so file numbers grow with time as in the demo (and the
    time-ordered indexes are appended to). Deterministic for a given (first_ordinal, seed)
    apart from ids and nonces.
    """
    rnd = random.Random(seed * 1_000_003 + first_ordinal)
    kid = vault.current_key()
    enc, bidx = vault.encrypt, vault.blind_index
    start, step = timeline
    rows = []
    for i, owner in enumerate(owners_):
        p = person(first_ordinal + i, owner.region, rnd)
        fid = uuid.uuid4()
        aad_id = str(fid)  # the associated data holds the row id as str(uuid), as _seal's does
        at = start + timedelta(seconds=(i + rnd.random()) * step)
        row = {"id": fid, "file_no": "", "category": p["category"], "gender": p["gender"],
               "owner_id": owner.user_id, "unit_id": owner.unit_id, "unit_path": owner.unit_path,
               "mobile_bidx": bidx("mobile", p["mobile"]),
               "id_number_bidx": bidx("id_number", p["id_number"]) if p["id_number"] else None,
               **search.index_values(vault, p["name"], p["mobile"], p["birthday"]),
               "key_id": kid, "created_at": at, "updated_at": at,
               "_filled": ",".join(c for c in PERSONAL_FIELDS if p[c])}
        for col in PERSONAL_FIELDS:
            row[f"{col}_ct"] = enc(p[col], table=TABLE, column=col, row_id=aad_id, key_id=kid)
        rows.append(row)
    return rows


def _make_files_in_worker(args) -> list[dict]:
    return make_files(_worker_vault, *args)


def _audit_rows(s: Session, files: list[dict], owners_: list[Owner], per_file: int) -> list[dict]:
    """per_file chained entries for each new file, appended under the audit_head row lock."""
    k = len(files) * per_file
    if k == 0:
        return []
    last, prev = s.execute(text("UPDATE audit_head SET seq = seq + :k WHERE id = 1 "
                                "RETURNING seq - :k, hash"), {"k": k}).one()
    at = clock.now()
    rows = []
    seq = last
    blank = dict.fromkeys(CHAINED)
    for f, owner in zip(files, owners_):
        for j in range(per_file):
            action, fields, detail = AUDIT_KINDS[j % len(AUDIT_KINDS)]
            seq += 1
            at += timedelta(microseconds=1)
            v = dict(blank)
            v.update(seq=seq, at=at, actor_id=owner.user_id, actor_username=owner.username,
                     actor_role=Role.SALESPERSON.value, action=action, object_type="customer",
                     object_id="" if action == "customer.list" else f["file_no"],
                     fields=f["_filled"] if fields is None else fields, outcome="allowed",
                     reason="", detail=detail, grant_id=None, client_addr="127.0.0.1")
            h = entry_hash(v, prev)
            v["prev_hash"], v["hash"] = prev, h
            prev = h
            rows.append(v)
    s.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": prev})
    return rows


def _plans(n: int, batch: int, team: list[Owner], free: dict[str, int], base: int):
    """(first ordinal, owner of each file) per batch: regions in proportion to their room."""
    started = clock.now() - HISTORY
    step = (HISTORY - timedelta(days=1)).total_seconds() / max(n, 1)
    by_region: dict[str, list[Owner]] = {}
    for o in team:
        by_region.setdefault(o.region, []).append(o)
    free = {r: f for r, f in free.items() if f > 0 and r in by_region}
    done = 0
    while done < n:
        k = min(batch, n - done)
        plan: list[Owner] = []
        for region, count in _split(k, free).items():
            people = by_region[region]
            plan += [people[(base + done + j) % len(people)] for j in range(count)]
            free[region] -= count
        yield base + done, plan, (started + timedelta(seconds=done * step), step)
        done += k


def _write_batch(db: Database, files: list[dict], owners_: list[Owner], per_file: int) -> int:
    """One transaction: take the file numbers, insert the files, append their audit entries."""
    with db.write() as s:
        if db.sqlite:  # the indexes of a million rows want more than the default 2 MB of cache
            s.execute(text("PRAGMA cache_size=-262144"))
        counts: dict[str, int] = {}
        for o in owners_:
            counts[o.region] = counts.get(o.region, 0) + 1
        nxt = {r: take_numbers(s, r, c) for r, c in counts.items()}
        for f, o in zip(files, owners_):
            f["file_no"] = rules.format_file_number(o.region, nxt[o.region])
            nxt[o.region] += 1
        conn = s.connection()
        conn.execute(CustomerFile.__table__.insert(),
                     [{k: v for k, v in f.items() if k != "_filled"} for f in files])
        tally.add(s, Counter((f["owner_id"], f["unit_path"]) for f in files))
        audit_rows = _audit_rows(s, files, owners_, per_file)
        if audit_rows:
            conn.execute(AuditEvent.__table__.insert(), audit_rows)
    return len(audit_rows)


# ---------------------------------------------------------------- the use case

def seed_files(db: Database, vault: Vault, n: int, *, audit_per_file: int = 3, batch: int = 5000,
               seed: int = 1, password: str | None = None, workers: int | None = None,
               progress: Callable[[int], None] | None = None) -> SeedReport:
    """Add n customer files (and audit_per_file chained audit entries each) for the salespeople.

    Needs the demo company (`portal demo`). Each batch is one transaction; a failure leaves
    the batches before it in place, each complete and consistent. `workers` processes
    (default: one per core beyond the first) generate and encrypt while this one writes.
    """
    if n < 0 or batch < 1 or audit_per_file < 0:
        raise ValueError("n, batch and audit_per_file must be positive")
    report = SeedReport()
    t0 = time.perf_counter()
    with db.write() as s:
        if not owners(s):
            raise SeedError("no demo salespeople; run `portal demo` first")
        report.regions_added = ensure_room(s, n, password or demo.demo_password())
        base = s.scalar(select(func.count()).select_from(CustomerFile)) or 0
        team = owners(s)
        free = room(s, {o.region for o in team})
    plans = _plans(n, batch, team, free, base)
    if workers is None:
        workers = max(1, (os.cpu_count() or 1) - 1)
    pool = None
    if workers > 0 and n > batch:
        pool = multiprocessing.get_context("fork").Pool(
            workers, initializer=_init_worker, initargs=(str(vault.ring.path),))
    try:
        pending: deque = deque()

        def submit() -> bool:
            nxt = next(plans, None)
            if nxt is None:
                return False
            first, plan, timeline = nxt
            args = (first, plan, seed, timeline)
            job = pool.apply_async(_make_files_in_worker, (args,)) if pool else None
            pending.append((plan, job, args))
            return True

        for _ in range(workers + 2 if pool else 1):
            submit()
        while pending:
            plan, job, args = pending.popleft()
            files = job.get() if job is not None else make_files(vault, *args)
            submit()  # keep the workers busy while this batch is written
            report.audit_entries += _write_batch(db, files, plan, audit_per_file)
            report.files += len(files)
            if progress:
                progress(len(files))
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    if not db.sqlite:
        # Fresh planner statistics after a bulk load, as any PostgreSQL bulk load should end.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("ANALYZE customer_file")
            c.exec_driver_sql("ANALYZE audit_event")
    else:
        db.refresh_statistics()
    report.seconds = time.perf_counter() - t0
    report.total_files = base + report.files
    return report
