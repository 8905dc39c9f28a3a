"""The `portal` command: migrate, serve, load the demo, manage units and users, import, audit, keys.

Every command works on the database and key file named by the PORTAL_* settings. Errors are
one line on stderr and a non-zero exit (2 for bad input), never a traceback; set
PORTAL_DEBUG=1 to see the traceback of an unexpected error.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from .accounts import service as accounts
from .accounts.actor import Actor
from .accounts.models import Role, User
from .audit import service as audit
from .config import Settings
from .customers import service as customers
from .customers.csv_format import parse_customers_csv
from .customers.models import CustomerFile
from .customers.rules import InvalidField
from .db import Database, is_sqlite
from .org import service as org
from .org.models import OrgUnit
from .vault import KeyRing, Vault, VaultError

CLI = Actor.system("cli")


class BadInput(click.ClickException):
    """Input the command refuses (exit 2, like a usage error, but without the usage text)."""

    exit_code = 2


class Failed(click.ClickException):
    exit_code = 1


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class PortalGroup(click.Group):
    """Turns domain errors raised anywhere below into one-line messages."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # Output piped into `head` and the like: stop quietly (as the Python docs advise).
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise click.exceptions.Exit(1) from None
        except (org.OrgError, accounts.AccountError) as exc:
            raise BadInput(f"{exc.field}: {exc}") from None
        except customers.InvalidInput as exc:
            raise BadInput(str(exc)) from None
        except InvalidField as exc:
            raise BadInput(f"{exc.field}: {exc.message}") from None
        except VaultError as exc:
            raise Failed(f"key problem: {exc}") from None
        except sa_exc.OperationalError as exc:
            # Only the driver's message: the statement and its parameters may hold personal data.
            msg = _first_line(exc.orig) if exc.orig is not None else "database error"
            if "no such table" in msg or "does not exist" in msg:
                raise Failed("the database is not set up; run `portal db upgrade` first") from None
            raise Failed(f"database error: {msg}") from None
        except sa_exc.SQLAlchemyError as exc:
            msg = _first_line(exc.orig) if getattr(exc, "orig", None) is not None else type(exc).__name__
            raise Failed(f"database error: {msg}") from None
        except OSError as exc:
            raise Failed(f"{exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}") from None
        except Exception as exc:
            if Settings.from_env().debug:
                raise
            raise Failed(f"unexpected {type(exc).__name__}: {_first_line(exc)} "
                         "(set PORTAL_DEBUG=1 for the traceback)") from None


class Env:
    """Settings, and the database and vault opened on first use (closed at exit)."""

    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self._db: Database | None = None
        self._vault: Vault | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            from .audit.checkpoints import signer_from
            ring = KeyRing.load_or_create(self.settings.key_file)
            self._db = Database(self.settings.database_url,
                                audit_signer=signer_from(ring, every=self.settings.audit_checkpoint_every))
        return self._db

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            path = self.settings.key_file
            if not path.exists():
                raise Failed(f"no key file at {path}; run `portal db upgrade` first")
            self._vault = Vault(KeyRing.load(path))
        return self._vault

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()


pass_env = click.make_pass_decorator(Env)


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _read_secret_stdin() -> str:
    line = sys.stdin.readline()
    value = line.rstrip("\r\n")
    if not value:
        raise BadInput("no password on standard input")
    return value


def _prompt_password() -> str:
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.group(cls=PortalGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """VIP Portal administration.

    Settings come from PORTAL_* environment variables, chiefly PORTAL_DATABASE_URL
    (default sqlite:///./var/portal.db) and PORTAL_KEY_FILE (default ./var/keys.json).
    Start with `portal db upgrade`, then `portal demo` or `portal org add` / `portal user add`,
    then `portal serve`.
    """
    env = Env()
    ctx.obj = env
    ctx.call_on_close(env.close)


# ---------------------------------------------------------------- db

@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


def _current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


@db.command("upgrade")
@pass_env
def db_upgrade(env: Env) -> None:
    """Migrate the database to the newest schema and make sure the key file exists."""
    from . import migrate

    if not (migrate.ROOT / "alembic.ini").exists():
        raise Failed(f"alembic.ini not found in {migrate.ROOT} "
                     "(install the package editable from its source tree)")
    url = env.settings.database_url
    if is_sqlite(url):
        u = make_url(url)
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    before = _current_revision(url)
    migrate.upgrade(url)
    after = _current_revision(url)
    if before == after:
        click.echo(f"database {_safe_url(url)} already at revision {after} (head)")
    else:
        click.echo(f"database {_safe_url(url)} upgraded from {before or 'empty'} "
                   f"to revision {after} (head)")
    key_file = env.settings.key_file
    existed = key_file.exists()
    KeyRing.load_or_create(key_file)
    click.echo(f"key file {key_file} {'present' if existed else 'created (mode 0600)'}")


# ---------------------------------------------------------------- serve

@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (they share sessions and the audit chain through the database).")
@pass_env
def serve(env: Env, host: str, port: int, workers: int) -> None:
    """Run the web application with uvicorn."""
    import uvicorn

    # Every worker loads the key file; create it once here so workers cannot race to make
    # different ones.
    KeyRing.load_or_create(env.settings.key_file)
    click.echo(f"serving on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''})")
    uvicorn.run(
        "portal.app:create_app_from_env", factory=True, host=host, port=port, workers=workers,
        # No access log on purpose: URLs can carry personal data (search terms, file ids).
        access_log=False,
        # Forwarded headers are handled by the app itself (PORTAL_TRUST_PROXY), not uvicorn.
        proxy_headers=False,
    )


# ---------------------------------------------------------------- demo

@main.command()
@click.option("--password-stdin", is_flag=True,
              help="Read the demo accounts' password from the first line of standard input "
                   "(otherwise $PORTAL_DEMO_PASSWORD, else the built-in demo password).")
@pass_env
def demo(env: Env, password_stdin: bool) -> None:
    """Load the demo company: units, 13 staff accounts, 300 customer files and a membership
    programme with two years of history (members, cards, purchases, points, stored value).

    Idempotent: what exists is left alone (passwords included), so a second run changes
    nothing and prints the accounts again.
    """
    from . import demo as demo_data

    password = demo_data.demo_password(_read_secret_stdin() if password_stdin else None)
    try:
        summary = demo_data.load_demo(env.db, env.vault, password)
    except demo_data.DemoError as exc:
        raise Failed(str(exc)) from None
    for w in summary.warnings:
        click.echo(f"warning: {w}", err=True)
    if summary.changed:
        click.echo(f"demo loaded: {summary.units_created} units, {len(summary.users_created)} users, "
                   f"{summary.files_created} customer files")
    else:
        click.echo("demo already loaded; nothing changed")
    rows = [(u.username, u.display_name, str(u.role), u.unit, password) for u in summary.users]
    _table(("username", "name", "role", "unit", "password"), rows)
    if len(summary.users_created) < len(summary.users):
        click.echo("(accounts that already existed keep the password they were created with)")
    if summary.notes:
        click.echo("\nmembership programme:")
        for note in summary.notes:
            click.echo(f"  {note}")
    click.echo(f"\nsign in at {demo_data.URL_HINT} (start it with `portal serve`)")
    click.echo("leaders, auditors and admins set up a second factor (any TOTP authenticator app) "
               "at their first sign-in; the page also shows the key to type in by hand")


# ---------------------------------------------------------------- org

@main.group("org")
def org_group() -> None:
    """Organisation units (company, regions, teams)."""


@org_group.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--parent", metavar="CODE", help="Code of the parent unit (omit only for the company itself).")
@pass_env
def org_add(env: Env, code: str, name: str, parent: str | None) -> None:
    """Add a unit CODE (1-6 letters or digits) named NAME."""
    with env.db.write() as s:
        unit = org.add_unit(s, code, name, parent, by=CLI)
        click.echo(f"added unit {unit.code} {unit.name}" + (f" under {parent}" if parent else " (company)"))


@org_group.command("list")
@pass_env
def org_list(env: Env) -> None:
    """List units as a tree, with how many users and customer files each holds."""
    with env.db.read() as s:
        units = org.all_units(s)
        users = dict(s.execute(select(User.unit_id, func.count()).group_by(User.unit_id)).all())
        files = dict(s.execute(select(CustomerFile.unit_id, func.count())
                               .group_by(CustomerFile.unit_id)).all())
    if not units:
        click.echo("no units yet; add the company with `portal org add CODE NAME`")
        return
    rows = [("  " * u.depth + u.code, u.name, str(users.get(u.id, 0)), str(files.get(u.id, 0)))
            for u in units]
    _table(("code", "name", "users", "files"), rows)


# ---------------------------------------------------------------- users

@main.group("user")
def user_group() -> None:
    """Staff accounts."""


@user_group.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]), help="The user's role.")
@click.option("--unit", "unit_code", required=True, metavar="CODE", help="Code of the user's unit.")
@click.option("--display-name", default="", help="Name shown in the portal, e.g. 王小明.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input instead of prompting.")
@pass_env
def user_add(env: Env, username: str, role: str, unit_code: str, display_name: str,
             password_stdin: bool) -> None:
    """Create the account USERNAME (the password is asked twice, hidden)."""
    password = _read_secret_stdin() if password_stdin else _prompt_password()
    with env.db.write() as s:
        user = accounts.add_user(s, username, role, unit_code, password,
                                 display_name=display_name, by=CLI)
        click.echo(f"added user {user.username} ({role}, {unit_code})")


def _set_active(env: Env, username: str, active: bool) -> None:
    with env.db.write() as s:
        user = accounts.set_active(s, username, active, by=CLI)
        click.echo(f"{'enabled' if active else 'disabled'} user {user.username}"
                   + ("" if active else "; their sessions have ended"))


@user_group.command("disable")
@click.argument("username")
@pass_env
def user_disable(env: Env, username: str) -> None:
    """Disable USERNAME: no sign-in, and signed-in browsers are signed out at once."""
    _set_active(env, username, False)


@user_group.command("enable")
@click.argument("username")
@pass_env
def user_enable(env: Env, username: str) -> None:
    """Enable USERNAME again."""
    _set_active(env, username, True)


@user_group.command("list")
@pass_env
def user_list(env: Env) -> None:
    """List all accounts."""
    with env.db.read() as s:
        rows = [(u.username, u.display_name, u.role, unit.code, "yes" if u.is_active else "no")
                for u, unit in accounts.list_users(s)]
    if not rows:
        click.echo("no users yet")
        return
    _table(("username", "name", "role", "unit", "active"), rows)


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
        if sys.stdout.isatty() and len(rows) > 200:
            with click.progressbar(rows, label="importing") as bar:
                for row in bar:
                    create(row)
        else:
            for row in rows:
                create(row)
        audit.record(s, actor, "customer.import", object_type="customer",
                     detail=f"{len(rows)} file(s) from {csv_file.name}")
    click.echo(f"imported {len(rows)} files for {user.username}")


# ---------------------------------------------------------------- purchases

@main.group("purchases")
def purchases_group() -> None:
    """Membership purchases made at the tills (points, joining, tiers)."""


class _Rollback(Exception):
    """Leaves the import's transaction without committing (a dry run, or a file with problems)."""


def _yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def _check_buyers(s, actor: Actor, sales) -> tuple[dict, list[tuple[int, str, str]]]:
    """Before anything is recorded: receipts not yet on record, every card and file known, the
    card belonging to the file when a row names both, and each client one ``actor`` sells to.
    Returns (receipt -> customer file id, problems as (line, field, message))."""
    from .customers.service import open_for
    from .membership.models import CardAccount, MemberCard, Membership, Purchase
    from .policy import Action, PermissionDenied

    receipts = [p.receipt_no for p in sales]
    recorded: set[str] = set()
    for i in range(0, len(receipts), 500):
        recorded |= set(s.scalars(select(Purchase.receipt_no).where(Purchase.receipt_no.in_(receipts[i:i + 500]))))
    problems: list[tuple[int, str, str]] = []
    buyers: dict = {}
    for p in sales:
        if p.receipt_no in recorded:
            problems.append((p.line, "receipt_no", f"Receipt {p.receipt_no} is already recorded."))
        f = field = None
        if p.file_no:
            f, field = s.scalar(select(CustomerFile).where(CustomerFile.file_no == p.file_no)), "file_no"
            if f is None:
                problems.append((p.line, "file_no", f"No customer file {p.file_no}."))
                continue
        if p.card_number:
            owner = s.scalar(select(Membership.customer_id)
                             .join(CardAccount, CardAccount.membership_id == Membership.id)
                             .join(MemberCard, MemberCard.account_id == CardAccount.id)
                             .where(MemberCard.number == p.card_number))
            if owner is None:
                problems.append((p.line, "card_number", f"No card {p.card_number}."))
                continue
            if f is not None and f.id != owner:
                problems.append((p.line, "card_number", f"Card {p.card_number} is not file {p.file_no}'s."))
                continue
            f, field = s.get(CustomerFile, owner), "card_number"
        if f is None:
            continue  # a sale without a card: anyone who records purchases may record it
        try:
            open_for(s, actor, f.id, Action.MEMBER_PURCHASE)
        except PermissionDenied:
            problems.append((p.line, field, f"File {f.file_no} is not a client {actor.username} may record "
                                            "purchases for (their own, or their team's for a leader)."))
            continue
        buyers[p.receipt_no] = f.id
    return buyers, problems


@purchases_group.command("import")
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "as_user", required=True, metavar="USERNAME",
              help="The salesperson (or leader) recording the sales as their own; every card and "
                   "file in the export must belong to a client they may sell to.")
@click.option("--dry-run", is_flag=True,
              help="Check the whole file and show what would be recorded (prices, points, who "
                   "would join) without recording anything.")
@pass_env
def purchases_import(env: Env, csv_file: Path, as_user: str, dry_run: bool) -> None:
    """Record the sales in a POS export FILE.csv (UTF-8, BOM optional) as USERNAME's.

    \b
    Header row, columns in any order:
      receipt_no      1-40 letters, digits, . _ / -
      date            YYYY-MM-DD, within the last 30 days (the claim period), not in the future
      card_number     optional, e.g. 755 00243
      file_no         optional, e.g. 755 00012
      product, quantity (whole number)
      unit_price      yuan, at most 2 decimals, e.g. 128.50
      special_price   optional 1/0 (yes/no); such lines earn no points
      group_buy       optional 1/0 (yes/no); such lines earn no points
      payment_method  cash, cheque, bank_transfer, wire or credit

    Rows with the same receipt_no, next to each other, are the lines of one purchase and agree
    on date, card, file and payment. A row with neither card nor file is a sale without a card:
    its points can be claimed later with the receipt number. Each purchase is priced, earns
    points and can make the customer a member exactly as at the till (oldest first).
    Stored-value payments need the member's PIN and cannot be imported.

    All or nothing: every problem is listed with its line number (the header is line 1) and
    nothing is recorded; exit status 1.
    """
    from .customers.service import NotFound
    from .membership.pos_csv import parse_pos_csv
    from .membership.purchases import record_purchase
    from .membership.rules import programme_today
    from .policy import Action, PermissionDenied, may_perform

    parsed = parse_pos_csv(csv_file.read_bytes(), today=programme_today())
    if not parsed.ok:
        for e in parsed.errors:
            click.echo(f"line {e.line}: {e.field}: {e.message}", err=True)
        raise Failed(f"nothing recorded: {len(parsed.errors)} problem(s) in {csv_file.name}")
    vault = env.vault
    problems: list[tuple[int, str, str]] = []
    done: list = []
    try:
        with env.db.write() as s:
            user = s.scalar(select(User).where(User.username == as_user.strip().lower()))
            if user is None or not user.is_active:
                raise BadInput(f"--as: {as_user} is not an active user")
            actor = accounts.actor_for(user, s.get(OrgUnit, user.unit_id))
            who = actor.username
            if not may_perform(actor, Action.MEMBER_PURCHASE):
                raise BadInput(f"--as: {who} ({user.role}) does not record purchases")
            buyers, problems = _check_buyers(s, actor, parsed.purchases)
            for p in [] if problems else sorted(parsed.purchases, key=lambda p: (p.purchased_on, p.line)):
                try:
                    with s.begin_nested():  # a refused purchase leaves nothing; the others are still checked
                        done.append((p, record_purchase(s, vault, actor, p.request(buyers.get(p.receipt_no)))))
                except InvalidField as exc:
                    problems.append((p.line, exc.field, exc.message))
                except customers.InvalidInput as exc:
                    problems.extend((p.line, k, v) for k, v in exc.errors.items())
                except (PermissionDenied, NotFound):
                    problems.append((p.line, "row", f"This purchase cannot be recorded by {who}."))
            if problems or dry_run:
                raise _Rollback
            audit.record(s, actor, "member.purchase_import", object_type="receipt",
                         detail=f"{len(done)} purchase(s) from {csv_file.name}")
    except _Rollback:
        pass
    if problems:
        for line, fld, message in sorted(problems):
            click.echo(f"line {line}: {fld}: {message}", err=True)
        raise Failed(f"nothing recorded: {len(problems)} problem(s) in {csv_file.name}")
    if dry_run:
        _table(("line", "receipt", "date", "buyer", "lines", "paid", "points", "note"),
               [(str(p.line), p.receipt_no, p.purchased_on.isoformat(), p.card_number or p.file_no or "no card",
                 str(len(p.lines)), _yuan(o.paid_total_fen), str(o.points_earned),
                 "joins" if o.joined else f"to {o.tier_changed_to}" if o.tier_changed_to else "")
                for p, o in done])
        click.echo("")
    outs = [o for _, o in done]
    click.echo(f"{'would record' if dry_run else 'recorded'} {len(done)} purchase(s) as {who} "
               f"from {csv_file.name}" + (" (dry run: nothing recorded)" if dry_run else ""))
    click.echo(f"  lines:           {parsed.line_count}")
    click.echo(f"  paid:            {_yuan(sum(o.paid_total_fen for o in outs))} "
               f"(discounts {_yuan(sum(o.discount_total_fen for o in outs))})")
    click.echo(f"  points awarded:  {sum(o.points_earned for o in outs):,}")
    click.echo(f"  members joined:  {sum(o.joined for o in outs)}")
    click.echo(f"  tier changes:    {sum(bool(o.tier_changed_to) for o in outs)}")
    anonymous = sum(p.anonymous for p, _ in done)
    if anonymous:
        click.echo(f"  without a card:  {anonymous} (points claimable with the receipt number)")
    for p, o in done:
        if o.joined:
            click.echo(f"{'would join' if dry_run else 'joined'}: {p.file_no or p.card_number} "
                       f"(receipt {p.receipt_no})" + ("" if dry_run else f", card {o.card_number}"))


# ---------------------------------------------------------------- audit

@main.group("audit")
def audit_group() -> None:
    """The append-only audit log."""


@audit_group.command("verify")
@pass_env
def audit_verify(env: Env) -> None:
    """Recompute the hash chain over every entry and check the signed checkpoints; exit 1 if any
    entry was changed, removed, inserted or reordered, or entries were cut off the end."""
    from .audit.checkpoints import public_keys_of, verify_checkpoints

    with env.db.read() as s:
        # A long log is checked in stretches, one process per core.
        report = audit.verify_chain(s, workers=os.cpu_count() or 1)
        cps = verify_checkpoints(s, public_keys_of(_load_ring(env)), report.count) if report.ok else None
    if not report.ok:
        raise Failed(f"audit chain broken at entry {report.first_bad_seq}: {report.problem}")
    if not cps.ok:
        raise Failed(f"audit chain broken at entry {cps.bad_seq}: {cps.problem}")
    signed = f", {cps.checked} signed checkpoint(s) up to entry {cps.latest_seq}" if cps.checked else ""
    click.echo(f"audit chain intact: {report.count} entries, head {report.head_hash}{signed}")


@audit_group.command("checkpoint")
@pass_env
def audit_checkpoint(env: Env) -> None:
    """Sign the chain's current head now (also done automatically every N entries)."""
    from .audit.checkpoints import signer_from, write_checkpoint

    signer = signer_from(_load_ring(env))
    with env.db.write() as s:
        cp = write_checkpoint(s, signer)
        audit.record(s, Actor.system("cli"), "audit.checkpoint", object_type="audit",
                     detail=f"seq={cp.seq}")
    click.echo(f"signed checkpoint at entry {cp.seq}: {cp.head_hash}")


# ---------------------------------------------------------------- keys

@main.group("keys")
def keys_group() -> None:
    """Field-encryption keys."""


def _load_ring(env: Env) -> KeyRing:
    path = env.settings.key_file
    if not path.exists():
        raise Failed(f"no key file at {path}; run `portal db upgrade` first")
    return KeyRing.load(path)


def _retire_unused(env: Env, ring: KeyRing) -> list[int]:
    with env.db.read() as s:
        in_use = customers.key_ids_in_use(s)
    retired = []
    for kid in sorted(ring.data_keys):
        if kid != ring.active and kid not in in_use:
            ring.retire(kid)
            retired.append(kid)
    return retired


@keys_group.command("status")
@pass_env
def keys_status(env: Env) -> None:
    """Show the active key, the keys held and retired, and how many files each key encrypts."""
    ring = _load_ring(env)
    with env.db.read() as s:
        counts = dict(s.execute(select(CustomerFile.key_id, func.count())
                                .group_by(CustomerFile.key_id)).all())
    click.echo(f"active key: {ring.active}")
    rows = [(str(k), "active" if k == ring.active else "held", str(counts.get(k, 0)))
            for k in sorted(ring.data_keys)]
    rows += [(str(k), f"retired {at}", str(counts.get(k, 0))) for k, at in sorted(ring.retired.items())]
    _table(("key", "state", "files"), rows)


@keys_group.command("rotate")
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 100000),
              help="Files re-encrypted per transaction.")
@click.option("--retire/--no-retire", default=True, show_default=True,
              help="Forget old keys once no file uses them. Use --no-retire while servers started "
                   "before the rotation still run, restart them, then `portal keys retire`.")
@pass_env
def keys_rotate(env: Env, batch: int, retire: bool) -> None:
    """Make a new data key active, re-encrypt every file under it, retire the old keys."""
    ring = _load_ring(env)
    old = ring.active
    new = ring.add_key()
    vault = Vault(ring)
    click.echo(f"new data key {new} is active (was {old})")
    with env.db.read() as s:
        todo = s.scalar(select(func.count()).select_from(CustomerFile).where(CustomerFile.key_id != new)) or 0
    done = 0

    def step() -> int:
        with env.db.write() as s:
            return customers.reencrypt_batch(s, vault, batch)

    if sys.stdout.isatty() and todo > batch:
        with click.progressbar(length=todo, label="re-encrypting") as bar:
            while n := step():
                done += n
                bar.update(n)
    else:
        while n := step():
            done += n
            if todo > batch:
                click.echo(f"re-encrypted {done}/{todo}")
    click.echo(f"re-encrypted {done} customer file(s) under key {new}")
    retired = _retire_unused(env, ring) if retire else []
    if retired:
        click.echo(f"retired key(s) {', '.join(map(str, retired))}")
    held = [k for k in sorted(ring.data_keys) if k != new]
    if held:
        click.echo(f"still held: key(s) {', '.join(map(str, held))}")
    with env.db.write() as s:
        audit.record(s, CLI, "keys.rotate", object_type="key", object_id=str(new),
                     detail=f"new_key={new} previous={old} reencrypted={done} "
                            f"retired={','.join(map(str, retired)) or '-'}")
    click.echo("restart running servers so new writes use the new key")


@keys_group.command("retire")
@pass_env
def keys_retire(env: Env) -> None:
    """Forget every data key (except the active one) that no customer file uses."""
    ring = _load_ring(env)
    retired = _retire_unused(env, ring)
    if not retired:
        click.echo("no unused keys to retire")
        return
    with env.db.write() as s:
        audit.record(s, CLI, "keys.retire", object_type="key", object_id=",".join(map(str, retired)),
                     detail=f"retired={','.join(map(str, retired))} active={ring.active}")
    click.echo(f"retired key(s) {', '.join(map(str, retired))}")


# ---------------------------------------------------------------- jobs

@main.group("jobs")
def jobs_group() -> None:
    """Housekeeping jobs (run them from cron or a systemd timer)."""


@jobs_group.command("purge-sessions")
@pass_env
def jobs_purge_sessions(env: Env) -> None:
    """Delete sign-in sessions that are idle-expired or past their maximum age."""
    st = env.settings
    with env.db.write() as s:
        n = accounts.purge_sessions(s, idle_minutes=st.session_idle_minutes, max_hours=st.session_max_hours)
    click.echo(f"purged {n} expired session(s)")


@jobs_group.command("daily")
@click.option("--date", "day", metavar="YYYY-MM-DD", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Run as of this day (Asia/Shanghai calendar), e.g. to catch up a missed run; "
                   "default today. A future day is refused.")
@pass_env
def jobs_daily(env: Env, day) -> None:
    """The membership programme's daily run (schedule it once a day, after midnight).

    With the figures of the programme settings: expires points whose validity is over (two
    years by default), ends memberships without a purchase for the lapse period (24 months),
    upgrades tiers whose thresholds are met and, at a card's validity end, moves a member down
    to the tier their 12-month spend supports (a leader's floor or ceiling still applies).
    Each member is handled in its own transaction and every step is idempotent, so a rerun is
    safe. Exit status 1 if any member failed (they are listed; rerun to retry them).
    """
    from .membership.jobs import run_daily
    from .membership.rules import programme_today

    today = programme_today()
    on = day.date() if day else today
    if on > today:
        raise BadInput(f"--date: {on.isoformat()} is in the future (today is {today.isoformat()})")
    report = run_daily(env.db, on)
    click.echo(f"daily membership job for {on.isoformat()}")
    click.echo(f"  members checked:     {report.members}")
    click.echo(f"  points expired:      {report.points_expired:,} (on {report.accounts_expired} card account(s))")
    click.echo(f"  upgrades:            {report.upgrades}")
    click.echo(f"  downgrades:          {report.downgrades}")
    click.echo(f"  memberships ended:   {report.ended}")
    click.echo(f"  failures:            {len(report.failures)}")
    for failure in report.failures:
        click.echo(f"failed: {failure}", err=True)
    if report.failures:
        raise Failed(f"{len(report.failures)} member(s) failed; rerun to retry them")


# ---------------------------------------------------------------- bench

@main.group("bench")
def bench_group() -> None:
    """Benchmark support (see `make bench` and BENCHMARKS.md)."""


@bench_group.command("seed")
@click.argument("count", type=click.IntRange(1, 10_000_000))
@click.option("--audit-per-file", default=3, show_default=True, type=click.IntRange(0, 20),
              help="Chained audit entries written per file (create, view, list, ...).")
@click.option("--batch", default=5000, show_default=True, type=click.IntRange(1, 100_000),
              help="Files per transaction.")
@click.option("--seed", "rnd_seed", default=1, show_default=True, type=int,
              help="Random seed (names, addresses, owners); numbers stay unique whatever it is.")
@click.option("--workers", default=None, type=click.IntRange(0, 64),
              help="Processes that generate and encrypt while the main one writes "
                   "[default: one per core beyond the first; 0: none].")
@click.option("--password-stdin", is_flag=True,
              help="Password for bench users, if regions must be added (else as `portal demo`).")
@pass_env
def bench_seed(env: Env, count: int, audit_per_file: int, batch: int, rnd_seed: int,
               workers: int | None, password_stdin: bool) -> None:
    """Add COUNT realistic encrypted customer files for the demo salespeople, with audit rows.

    Needs the demo company (`portal demo`). Each run adds to what is there; file numbers,
    mobile and ID numbers stay unique. A region holds 99,999 file numbers: past that,
    regions with a team of four salespeople and a leader are added (password as `portal demo`).
    """
    from . import demo as demo_data
    from .bench import seed as bench

    password = demo_data.demo_password(_read_secret_stdin() if password_stdin else None)
    with click.progressbar(length=count, label="seeding customer files", show_eta=True,
                           show_pos=True, file=sys.stderr) as bar:
        try:
            report = bench.seed_files(env.db, env.vault, count, audit_per_file=audit_per_file,
                                      batch=batch, seed=rnd_seed, password=password,
                                      workers=workers, progress=bar.update)
        except bench.SeedError as exc:
            raise Failed(str(exc)) from None
    if report.regions_added:
        click.echo(f"added region(s) {', '.join(report.regions_added)} (file numbers run to 99,999 per region)")
    click.echo(f"seeded {report.files} customer files and {report.audit_entries} audit entries "
               f"in {report.seconds:.1f} s ({report.files_per_second:,.0f} files/s); "
               f"{report.total_files} files in all")


# ---------------------------------------------------------------- output

def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A plain text table; widths count East Asian wide characters as two columns."""
    import unicodedata

    def width(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    cols = list(zip(header, *rows))
    widths = [max(width(str(c)) for c in col) for col in cols]

    def line(cells) -> str:
        return "  ".join(str(c) + " " * (w - width(str(c))) for c, w in zip(cells, widths)).rstrip()

    click.echo(line(header))
    click.echo("  ".join("-" * w for w in widths))
    for r in rows:
        click.echo(line(r))


# ---------------------------------------------------------------- POS terminals

@main.group("terminal")
def terminal_group() -> None:
    """POS terminals and their API keys (for /api/v1)."""


@terminal_group.command("add")
@click.argument("name")
@click.option("--unit", "unit_code", required=True, metavar="CODE",
              help="Code of the unit the terminal serves (its members and the units below).")
@pass_env
def terminal_add(env: Env, name: str, unit_code: str) -> None:
    """Issue an API key for a new terminal NAME; the key is printed once and never stored."""
    from .pos import terminals

    with env.db.write() as s:
        t, key = terminals.issue_key(s, CLI, name, unit_code)
        click.echo(f"added terminal {t.id} {t.name} ({unit_code}), key prefix {t.key_prefix}")
    click.echo(key)
    click.echo("copy this key into the terminal now: it is not shown again", err=True)


@terminal_group.command("list")
@pass_env
def terminal_list(env: Env) -> None:
    """List terminals: unit, key prefix, created, last used, revoked (times in UTC)."""
    from .pos import terminals

    with env.db.read() as s:
        rows = terminals.list_terminals(s)
    if not rows:
        click.echo("no terminals yet; add one with `portal terminal add NAME --unit CODE`")
        return

    def when(t) -> str:
        return t.strftime("%Y-%m-%d %H:%M") if t else "-"

    _table(("id", "name", "unit", "prefix", "created", "last used", "revoked"),
           [(str(t.id), t.name, t.unit_code, t.key_prefix, when(t.created_at), when(t.last_used_at),
             when(t.revoked_at)) for t in rows])


@terminal_group.command("revoke")
@click.argument("terminal_id", type=int)
@click.option("--reason", required=True, help="Why the key is withdrawn (recorded in the audit log).")
@pass_env
def terminal_revoke(env: Env, terminal_id: int, reason: str) -> None:
    """Revoke terminal TERMINAL_ID's key at once."""
    from .pos import terminals

    with env.db.write() as s:
        t = terminals.revoke(s, CLI, terminal_id, reason)
        click.echo(f"revoked terminal {t.id} {t.name} (key prefix {t.key_prefix})")


@terminal_group.command("purge-replies")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3650),
              help="Keep the stored answers to idempotent API calls this many days.")
@pass_env
def terminal_purge_replies(env: Env, days: int) -> None:
    """Forget old stored answers to API calls (run it from cron, like `portal jobs`)."""
    from .pos import idempotency

    with env.db.write() as s:
        n = idempotency.purge(s, days)
    click.echo(f"forgot {n} stored API answer(s) older than {days} day(s)")


if __name__ == "__main__":  # pragma: no cover
    main()
