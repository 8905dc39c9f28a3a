"""The demo company: units, staff accounts, ~300 customer files and a lived-in membership programme.

Used by `portal demo`, by the tests and by the browser tests, so the data is deterministic
(seeded random.Random) and loading is idempotent: what already exists is left alone.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import clock, demo_credit, demo_events, demo_messages, demo_reports
from .accounts import service as accounts
from .accounts.actor import Actor
from .accounts.models import Role, User
from .accounts.passwords import check_password_rule
from .audit import service as audit
from .customers.models import CustomerFile
from .customers.rules import Category
from .customers.service import CustomerInput, create_file
from . import demo_coupons, demo_privacy, demo_service
from .demo_programme import DEMO_PIN, _ensure_programme, programme_notes  # noqa: F401
from .db import Database
from .org import service as org
from .org.models import OrgUnit
from .vault import Vault

DEFAULT_PASSWORD = "vip-demo-2026!"
PASSWORD_ENV = "PORTAL_DEMO_PASSWORD"
SEED = 20260101
FILES_PER_SALESPERSON = 50
URL_HINT = "http://127.0.0.1:8000"
BORN_FROM, BORN_TO = date(1955, 1, 1), date(2000, 12, 31)


@dataclass(frozen=True)
class DemoUnit:
    code: str
    name: str
    parent: str | None


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    role: str
    unit: str


# Parents before children.
DEMO_UNITS: tuple[DemoUnit, ...] = (
    DemoUnit("HQ", "VIP 酒业集团", None),
    DemoUnit("755", "深圳大区", "HQ"),
    DemoUnit("010", "北京大区", "HQ"),
    DemoUnit("755A", "深圳一组", "755"),
    DemoUnit("755B", "深圳二组", "755"),
    DemoUnit("010A", "北京一组", "010"),
)

DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("alice", "艾丽丝", Role.SALESPERSON, "755A"),
    DemoUser("amy", "艾米", Role.SALESPERSON, "755A"),
    DemoUser("charlie", "查理", Role.SALESPERSON, "755B"),
    DemoUser("chris", "克里斯", Role.SALESPERSON, "755B"),
    DemoUser("frank", "弗兰克", Role.SALESPERSON, "010A"),
    DemoUser("fiona", "菲奥娜", Role.SALESPERSON, "010A"),
    DemoUser("bob", "鲍勃", Role.LEADER, "755A"),
    DemoUser("ivan", "伊万", Role.LEADER, "755B"),
    DemoUser("henry", "亨利", Role.LEADER, "010A"),
    DemoUser("grace", "格蕾丝", Role.LEADER, "755"),
    DemoUser("cathy", "凯茜", Role.CUSTOMER_SERVICE, "HQ"),
    DemoUser("dave", "戴夫", Role.AUDITOR, "HQ"),
    DemoUser("erin", "艾琳", Role.ADMIN, "HQ"),
)

SALESPEOPLE: tuple[str, ...] = tuple(u.username for u in DEMO_USERS if u.role == Role.SALESPERSON)


class DemoError(RuntimeError):
    """The database holds something that conflicts with the demo company."""


@dataclass
class DemoSummary:
    password: str
    units_created: int = 0
    users_created: list[str] = field(default_factory=list)
    files_created: int = 0
    users: list[DemoUser] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    members_created: int = 0
    purchases_created: int = 0
    notes: list[str] = field(default_factory=list)  # what to try in the membership programme

    @property
    def changed(self) -> bool:
        return bool(self.units_created or self.users_created or self.files_created or self.members_created)


def demo_password(stdin_value: str | None = None) -> str:
    """The password for demo accounts: given on stdin, else $PORTAL_DEMO_PASSWORD, else the default."""
    if stdin_value is not None:
        return stdin_value
    return os.environ.get(PASSWORD_ENV) or DEFAULT_PASSWORD


from .demo_people import (  # noqa: F401  (re-exported: tests and the bench use them)
    AREA_CODES, CATEGORY_WEIGHTS, CITIES, COMPOUND_SURNAMES, EMPLOYERS, FEMALE_CHARS,
    MALE_CHARS, MOBILE_PREFIXES, NOTES, SURNAMES, _address, _id_number, _name)


@dataclass(frozen=True)
class DemoCustomer:
    owner: str
    age_minutes: int  # how long ago the file was created, for a realistic history
    data: CustomerInput


def demo_customers(seed: int = SEED, per_salesperson: int = FILES_PER_SALESPERSON) -> list[DemoCustomer]:
    """The demo's customers, oldest first; the same list on every call."""
    rnd = random.Random(seed)
    regions = {u.username: u.unit[:3] for u in DEMO_USERS}
    mobiles: set[str] = set()
    ids: set[str] = set()
    out: list[DemoCustomer] = []
    cats, weights = zip(*CATEGORY_WEIGHTS.items())
    for username in SALESPEOPLE:
        region = regions[username]
        # Every category appears in every salesperson's book.
        categories = list(cats) + rnd.choices(cats, weights, k=per_salesperson - len(cats))
        rnd.shuffle(categories)
        for category in categories[:per_salesperson]:
            gender = "M" if rnd.random() < 0.68 else "F"
            mobile = ""
            while not mobile or mobile in mobiles:
                mobile = rnd.choice(MOBILE_PREFIXES) + f"{rnd.randrange(10 ** 8):08d}"
            mobiles.add(mobile)
            born = BORN_FROM + timedelta(days=rnd.randrange((BORN_TO - BORN_FROM).days + 1))
            id_number = None
            if rnd.random() < 0.9:
                id_number = ""
                while not id_number or id_number in ids:
                    id_number = _id_number(rnd, born, gender)
                ids.add(id_number)
            birthday = born if id_number or rnd.random() < 0.5 else None
            emp = EMPLOYERS[category]
            employer = rnd.choice(emp[region])
            position = rnd.choice(emp["_positions"]) if employer or category == Category.INDIVIDUAL else ""
            notes = rnd.choice(NOTES) if rnd.random() < 0.7 else ""
            if notes and rnd.random() < 0.25:
                notes += f"；生日在 {born.month} 月，可安排生日礼"
            data = CustomerInput(
                name=_name(rnd, gender), gender=gender, mobile=mobile, category=str(category),
                id_number=id_number, birthday=birthday, address=_address(rnd, region),
                employer=employer, position=position, notes=notes)
            age = rnd.randrange(24 * 60, 730 * 24 * 60)
            out.append(DemoCustomer(owner=username, age_minutes=age, data=data))
    out.sort(key=lambda c: -c.age_minutes)  # oldest first: file numbers grow with time
    return out


# ---------------------------------------------------------------- loading

def _ensure_units(s: Session, by: Actor, summary: DemoSummary) -> None:
    for u in DEMO_UNITS:
        unit = org.unit_by_code(s, u.code)
        if unit is None:
            if u.parent is None:
                root = s.scalar(select(OrgUnit).where(OrgUnit.parent_id.is_(None)).limit(1))
                if root is not None:
                    raise DemoError(f"The database already has a company ({root.code} {root.name}); "
                                    "load the demo into an empty database.")
            org.add_unit(s, u.code, u.name, u.parent, by=by)
            summary.units_created += 1
        elif unit.name != u.name:
            summary.warnings.append(f"unit {u.code} exists with another name ({unit.name}); left as is")


def _ensure_users(s: Session, password: str, by: Actor, summary: DemoSummary) -> None:
    units = {u.id: u.code for u in org.all_units(s)}
    for du in DEMO_USERS:
        user = s.scalar(select(User).where(User.username == du.username))
        if user is None:
            accounts.add_user(s, du.username, str(du.role), du.unit, password,
                              display_name=du.display_name, by=by)
            summary.users_created.append(du.username)
        elif user.role != du.role or units.get(user.unit_id) != du.unit:
            summary.warnings.append(f"user {du.username} exists as {user.role} in "
                                    f"{units.get(user.unit_id, '?')}; left as is")
        summary.users.append(du)


def _ensure_customers(s: Session, vault: Vault, summary: DemoSummary) -> None:
    owners: dict[str, tuple[User, Actor]] = {}
    for username in SALESPEOPLE:
        user = s.scalar(select(User).where(User.username == username))
        if user is None or not user.is_active or user.role != Role.SALESPERSON:
            summary.warnings.append(f"no customers for {username}: not an active salesperson")
            continue
        has = s.scalar(select(func.count()).select_from(CustomerFile)
                       .where(CustomerFile.owner_id == user.id))
        if has:
            continue  # this book was loaded before (or the user made their own): leave it
        owners[username] = (user, accounts.actor_for(user, s.get(OrgUnit, user.unit_id)))
    if not owners:
        return
    now = clock.now()
    for c in demo_customers():
        if c.owner not in owners:
            continue
        user, actor = owners[c.owner]
        f = create_file(s, vault, actor, c.data, owner=user, audit_it=False)
        # Spread the files over the last two years so lists and reports look lived-in.
        f.created_at = f.updated_at = now - timedelta(minutes=c.age_minutes)
        summary.files_created += 1
    s.flush()



def load_demo(db: Database, vault: Vault, password: str = DEFAULT_PASSWORD) -> DemoSummary:
    """Create whatever part of the demo company is missing, in one transaction.

    A second call changes nothing (existing units, users and customer books are left alone,
    passwords included). Raises DemoError on a conflicting database, AccountError for a
    password the password rule refuses.
    """
    for du in DEMO_USERS:  # fail before hashing anything
        try:
            check_password_rule(password, username=du.username)
        except ValueError as exc:
            raise accounts.AccountError(
                "password", f"Demo password refused for {du.username}: {exc}") from None
    summary = DemoSummary(password=password)
    by = Actor.system("demo")
    with db.write() as s:
        _ensure_units(s, by, summary)
        _ensure_users(s, password, by, summary)
        _ensure_customers(s, vault, summary)
        _ensure_programme(s, vault, summary)
        demo_reports.seed(s, vault, summary)
        demo_events.seed(s, vault, summary)
        demo_credit.seed(s, vault, summary)
        summary.notes = programme_notes(s, vault)
        demo_service.seed(s, vault, summary)
        demo_messages.seed(s, vault, summary)
        demo_coupons.seed(s, vault, summary)
        demo_privacy.seed(s, vault, summary)
        if summary.changed:
            audit.record(s, by, "demo.load", object_type="demo", object_id="demo",
                         detail=f"units={summary.units_created} users={len(summary.users_created)} "
                                f"customer_files={summary.files_created}")
    return summary
