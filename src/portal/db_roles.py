"""PostgreSQL roles: the owner migrates, the application role only reads and writes.

Two roles share a production database. The **owner** owns the schema: it runs `portal db
upgrade` (migrations) and `portal db grant`. The **application role** is what `portal serve`
and the jobs connect as: it may read and write the portal's tables, but it owns nothing, so it
cannot ALTER a table, drop or disable a trigger, or TRUNCATE; and it holds neither UPDATE nor
DELETE on the append-only tables below. The triggers the migrations put on those tables are
then a second wall, not the only one.

`APPEND_ONLY` is the one list of those tables: the grants, `portal doctor` and the tests read
it (a test fails when a table with an append-only trigger is missing from it).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection

# Records that only ever grow: the hash-chained audit log, its signed checkpoints, the points
# and stored-value ledgers, each member's history, the receivables ledger, the catalogue's and
# the credit terms' versions, members' consent decisions, members' tiers over time, liability
# settlements and the coupon ledger. The application may SELECT and INSERT.
APPEND_ONLY: tuple[str, ...] = ("audit_event", "audit_checkpoint", "points_entry",
                                "stored_value_entry", "member_event", "receivable_entry", "product_version",
                                "credit_terms_version", "consent_record", "tier_change", "liability_settlement",
                                "coupon_entry")
# Never deleted, but UPDATEd: the audit chain's head (moved forward by every append) and a
# complaint's steps (only their encrypted note, so that key rotation can re-encrypt it; the
# database refuses any other change).
NO_DELETE: tuple[str, ...] = ("audit_head", "complaint_step")
# Read by the application (readiness: "are the migrations current?"), written by the owner only.
READ_ONLY: tuple[str, ...] = ("alembic_version",)

READ_WRITE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")


def privileges_for(table: str) -> tuple[str, ...]:
    """What the application role may do to `table` (never TRUNCATE, REFERENCES or TRIGGER)."""
    if table in APPEND_ONLY:
        return ("SELECT", "INSERT")
    if table in NO_DELETE:
        return ("SELECT", "INSERT", "UPDATE")
    if table in READ_ONLY:
        return ("SELECT",)
    return READ_WRITE_PRIVILEGES


class RoleError(Exception):
    pass


@dataclass
class GrantReport:
    role: str
    tables: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sequences: int = 0


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)


def grant_app_role(conn: Connection, role: str) -> GrantReport:
    """Give `role` exactly the privileges of `privileges_for` on every table of the current
    schema (revoking anything else it held there), USAGE on the sequences, and default
    privileges (SELECT, INSERT) on tables the connected owner creates later: a table a future
    migration adds is then usable but not changeable until this is run again (`portal db
    upgrade` does so by itself for every role granted before). Idempotent.

    Run as the owner of the tables, in one transaction (the caller's)."""
    if conn.dialect.name != "postgresql":
        raise RoleError("roles exist on PostgreSQL only (SQLite: protect the database file's mode)")
    row = conn.execute(text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"),
                       {"r": role}).first()
    if row is None:
        raise RoleError(f"no role {role!r} in this PostgreSQL (create it first: CREATE ROLE {role} LOGIN PASSWORD '…')")
    if row.rolsuper:
        raise RoleError(f"role {role!r} is a superuser: privileges cannot restrict it")
    me = conn.execute(text("SELECT current_user")).scalar()
    if me == role:
        raise RoleError(f"role {role!r} is the one connected (the owner): connect as the owner, "
                        "grant to the application role")
    schema = conn.execute(text("SELECT current_schema()")).scalar()
    q = _quote(conn, role)
    qs = _quote(conn, schema)
    tables = list(conn.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = :s ORDER BY tablename"), {"s": schema}).scalars())
    report = GrantReport(role=role)
    conn.execute(text(f"GRANT USAGE ON SCHEMA {qs} TO {q}"))
    conn.execute(text(f"REVOKE CREATE ON SCHEMA {qs} FROM {q}"))
    for t in tables:
        qt = f"{qs}.{_quote(conn, t)}"
        privs = privileges_for(t)
        conn.execute(text(f"REVOKE ALL ON TABLE {qt} FROM {q}"))
        conn.execute(text(f"GRANT {', '.join(privs)} ON TABLE {qt} TO {q}"))
        report.tables[t] = privs
    seqs = list(conn.execute(text(
        "SELECT sequencename FROM pg_sequences WHERE schemaname = :s"), {"s": schema}).scalars())
    for name in seqs:
        conn.execute(text(f"REVOKE ALL ON SEQUENCE {qs}.{_quote(conn, name)} FROM {q}"))
        conn.execute(text(f"GRANT USAGE, SELECT ON SEQUENCE {qs}.{_quote(conn, name)} TO {q}"))
    report.sequences = len(seqs)
    conn.execute(text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {qs} REVOKE ALL ON TABLES FROM {q}"))
    conn.execute(text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {qs} GRANT SELECT, INSERT ON TABLES TO {q}"))
    conn.execute(text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {qs} GRANT USAGE, SELECT ON SEQUENCES TO {q}"))
    return report


def granted_roles(conn: Connection) -> list[str]:
    """Roles other than the connected one that `grant_app_role` set up in this schema (they
    hold INSERT on the audit log)."""
    if conn.dialect.name != "postgresql":
        return []
    return list(conn.execute(text(
        "SELECT DISTINCT grantee FROM information_schema.table_privileges "
        "WHERE table_schema = current_schema() AND table_name = 'audit_event' "
        "AND privilege_type = 'INSERT' AND grantee <> current_user ORDER BY grantee")).scalars())
