"""Test users with a story: alice (salesperson, owner), bob (her team's leader), charlie
(salesperson, another team), grace (leads the whole 755 region), henry (leader, another region),
dave (auditor), erin (admin), cathy (customer service), frank (salesperson, region 010)."""
from __future__ import annotations

from dataclasses import dataclass, field

import base64
import hashlib

from portal import clock
from portal.accounts import mfa
from portal.accounts import service as accounts
from portal.accounts.actor import Actor
from portal.accounts.models import User
from portal.customers import service as customers
from portal.customers.rules import id_check_char
from portal.org import service as org
from portal.org.models import OrgUnit

PASSWORD = "correct horse battery"


def totp_secret(username: str) -> str:
    """A fixed second-factor secret per story user (leaders, auditor, admin are enrolled)."""
    return base64.b32encode(hashlib.sha1(username.encode()).digest()).decode().rstrip("=")

UNITS = [("HQ", "总部", None), ("755", "深圳大区", "HQ"), ("755A", "深圳一组", "755"),
         ("755B", "深圳二组", "755"), ("010", "北京大区", "HQ"), ("010A", "北京一组", "010")]
USERS = [("alice", "salesperson", "755A"), ("bob", "leader", "755A"), ("charlie", "salesperson", "755B"),
         ("grace", "leader", "755"), ("henry", "leader", "010A"), ("dave", "auditor", "HQ"),
         ("erin", "admin", "HQ"), ("cathy", "customer_service", "HQ"), ("frank", "salesperson", "010A")]


def valid_id(birth: str = "19900307", seq: str = "123", area: str = "110105") -> str:
    first17 = area + birth + seq
    return first17 + id_check_char(first17)


def customer_input(n: int = 0, **over) -> customers.CustomerInput:
    base = dict(name=["王小明", "李娜", "张伟", "刘洋", "陈静", "欧阳修"][n % 6], gender="M",
                mobile=f"1380013{n:04d}", category="individual",
                id_number=valid_id(seq=f"{n % 1000:03d}"), address="深圳市南山区科技园路1号",
                employer="深圳某公司", position="总经理", notes="偏好茅台")
    base.update(over)
    if base.get("id_number"):
        from portal.customers.rules import id_number_birthday
        base.setdefault("birthday", id_number_birthday(base["id_number"]))
    return customers.CustomerInput(**base)


@dataclass
class Story:
    users: dict[str, int] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)  # username -> [file ids]

    def actor(self, db, username: str, addr: str = "127.0.0.1") -> Actor:
        with db.read() as s:
            u = s.get(User, self.users[username])
            return accounts.actor_for(u, s.get(OrgUnit, u.unit_id), addr)


def build_story(db, vault) -> Story:
    story = Story()
    with db.write() as s:
        for code, name, parent in UNITS:
            org.add_unit(s, code, name, parent)
        for username, role, unit in USERS:
            u = accounts.add_user(s, username, role, unit, PASSWORD, display_name=username.title())
            story.users[username] = u.id
            if mfa.required(role):
                # Those who decide sign in with a second factor; the tests know their secrets.
                u.totp_secret_ct = vault.encrypt(totp_secret(username), table="user_account",
                                                 column="totp_secret", row_id=u.id)
                u.totp_enabled_at = clock.now()
    n = 0
    for owner, count in (("alice", 3), ("charlie", 2), ("frank", 1), ("bob", 1)):
        actor = story.actor(db, owner)
        with db.write() as s:
            for _ in range(count):
                f = customers.create_file(s, vault, actor, customer_input(n))
                story.files.setdefault(owner, []).append(str(f.id))
                n += 1
    return story


def stored_values(db) -> list[bytes]:
    """Every non-null value in every table, as bytes: what a database dump would hold."""
    from sqlalchemy import inspect, text

    out = []
    with db.engine.connect() as c:
        for table in inspect(db.engine).get_table_names():
            for row in c.execute(text(f'SELECT * FROM "{table}"')):
                for v in row:
                    if isinstance(v, (bytes, bytearray, memoryview)):
                        out.append(bytes(v))
                    elif v is not None:
                        out.append(str(v).encode("utf-8"))
    return out


def id_number_of(db, vault, file_id) -> str:
    """The ID number on a file, as the holder would show it at the counter."""
    import uuid as _uuid
    from portal.customers.models import CustomerFile
    with db.read() as s:
        f = s.get(CustomerFile, _uuid.UUID(str(file_id)))
        return vault.decrypt(f.id_number_ct, table="customer_file", column="id_number", row_id=f.id)
