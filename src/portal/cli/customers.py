"""`portal` commands: Customer files: bulk import."""
from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from ..accounts import service as accounts
from ..accounts.models import Role, User
from ..audit import service as audit
from ..customers import service as customers
from ..customers.csv_format import parse_customers_csv
from ..customers.models import CustomerFile
from ..org.models import OrgUnit
from ..vault import Vault


from .base import (CLI, BadInput, Env, Failed, main, pass_env)
from .progress import progress


# ---------------------------------------------------------------- customers

@main.group("customers")
def customers_group() -> None:
    """Customer files."""


def _existing_duplicates(s, vault: Vault, rows) -> list[tuple[int, str, str]]:
    """(line, field, file_no) for rows whose mobile or ID number is already on file."""
    by_bidx: dict[tuple[str, str], int] = {}
    for r in rows:
        by_bidx[("mobile", vault.blind_index("mobile", r.mobile))] = r.line
        if r.id_number:
            by_bidx[("id_number", vault.blind_index("id_number", r.id_number))] = r.line
    found: list[tuple[int, str, str]] = []
    keys = list(by_bidx)
    for i in range(0, len(keys), 400):
        chunk = keys[i:i + 400]
        mob = [b for k, b in chunk if k == "mobile"]
        idn = [b for k, b in chunk if k == "id_number"]
        stmt = select(CustomerFile.file_no, CustomerFile.mobile_bidx, CustomerFile.id_number_bidx).where(
            CustomerFile.mobile_bidx.in_(mob) | CustomerFile.id_number_bidx.in_(idn))
        for file_no, mb, ib in s.execute(stmt):
            if ("mobile", mb) in by_bidx:
                found.append((by_bidx[("mobile", mb)], "mobile", file_no))
            if ib and ("id_number", ib) in by_bidx:
                found.append((by_bidx[("id_number", ib)], "id_number", file_no))
    return sorted(set(found))


@customers_group.command("import")
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--owner", required=True, metavar="USERNAME",
              help="The active salesperson or leader who will own every imported file.")
@pass_env
def customers_import(env: Env, csv_file: Path, owner: str) -> None:
    """Import customer files from a UTF-8 CSV (as Excel saves "CSV UTF-8").

    Columns: name,gender,mobile,id_number,birthday,address,employer,position,category,notes.
    All or nothing: if any row is wrong, every problem is listed and nothing is imported;
    a mobile or ID number already on file counts as a problem.
    """
    result = parse_customers_csv(csv_file.read_bytes())
    if not result.ok:
        for e in result.errors:
            click.echo(f"line {e.line}: {e.field}: {e.message}", err=True)
        raise Failed(f"nothing imported: {len(result.errors)} problem(s) in {csv_file.name}")
    vault = env.vault
    with env.db.write() as s:
        user = s.scalar(select(User).where(User.username == owner.strip().lower()))
        if user is None or not user.is_active or user.role not in (Role.SALESPERSON, Role.LEADER):
            raise BadInput(f"owner: {owner} is not an active salesperson or leader")
        dups = _existing_duplicates(s, vault, result.rows)
        if dups:
            for line, fld, file_no in dups:
                click.echo(f"line {line}: {fld}: already on file {file_no}", err=True)
            raise Failed(f"nothing imported: {len(dups)} row(s) duplicate existing files")
        actor = accounts.actor_for(user, s.get(OrgUnit, user.unit_id))

        def create(row) -> None:
            data = customers.CustomerInput(
                name=row.name, gender=str(row.gender), mobile=row.mobile, category=str(row.category),
                id_number=row.id_number, birthday=row.birthday, address=row.address,
                employer=row.employer, position=row.position, notes=row.notes)
            customers.create_file(s, vault, actor, data, owner=user, audit_it=True)

        rows = result.rows
        with progress(len(rows), "importing customer files") as step:
            for row in rows:
                create(row)
                step(1)
        audit.record(s, actor, "customer.import", object_type="customer",
                     detail=f"{len(rows)} file(s) from {csv_file.name}")
    click.echo(f"imported {len(rows)} files for {user.username}")


def reindex_files(db, vault: Vault, *, everything: bool = False, batch: int = 1000) -> int:
    """Fill (or, with everything, recompute) the search blind indexes; one transaction per batch."""
    from ..customers import search

    done, after = 0, ("" if everything else None)
    while True:
        with db.write() as s:
            n, last = search.reindex_batch(s, vault, batch=batch, everything_after=after)
        done += n
        if n < batch:
            return done
        if everything:
            after = last


@customers_group.command("reindex")
@click.option("--all", "everything", is_flag=True,
              help="Recompute every file's indexes (after the name rules change), not only missing ones.")
@pass_env
def customers_reindex(env: Env, everything: bool) -> None:
    """Compute the blind indexes that search by name, surname and the mobile's last four digits
    use, and the birthday's month-day index that the home page's "birthdays today" uses.

    Files written before those indexes existed have none until this runs; `portal db upgrade`
    runs it after migrating. Safe to repeat and to run while the portal serves.
    """
    n = reindex_files(env.db, env.vault, everything=everything)
    with env.db.write() as s:
        audit.record(s, CLI, "customer.reindex", object_type="customer",
                     detail=f"{n} file(s) indexed for search")
    click.echo(f"indexed {n} file(s) for search by name")


@customers_group.command("tally")
@click.option("--rebuild", is_flag=True, help="Recount the tally from the files (one statement) after showing what differs.")
@pass_env
def customers_tally(env: Env, rebuild: bool) -> None:
    """Compare customer_file_tally, the files per owner and unit that the home pages' files
    figure reads, with the files themselves; exit 1 if they differ (and --rebuild was not given).

    The portal keeps the tally in the transaction that creates or reassigns a file, so they
    should never differ; a database edited by hand is the one way they can.
    """
    from ..customers import tally

    with env.db.read() as s:
        wrong = tally.differences(s)
    for owner_id, path, tallied, counted in wrong:
        click.echo(f"owner {owner_id}, unit {path}: tallied {tallied}, files {counted}")
    if not wrong:
        click.echo("tally matches the files")
        return
    if not rebuild:
        raise Failed(f"{len(wrong)} (owner, unit) tallies differ from the files; `portal customers tally --rebuild` recounts them")
    with env.db.write() as s:
        tally.rebuild(s)
        audit.record(s, CLI, "customer.tally", object_type="customer",
                     detail=f"tally rebuilt: {len(wrong)} (owner, unit) rows differed")
    click.echo(f"tally rebuilt ({len(wrong)} differed)")
