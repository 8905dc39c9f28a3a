"""`portal` commands: Organisation units and staff accounts."""
from __future__ import annotations


import click
from sqlalchemy import func, select

from ..accounts import approvals, setup
from ..accounts import service as accounts
from ..accounts.models import Role, User
from ..customers.models import CustomerFile
from ..org import service as org


from .base import (CLI, BadInput, Env, _read_secret_stdin,
                   _table, main, pass_env)


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
              help="Read the password from the first line of standard input (else the user "
                   "chooses one with a one-time set-up code, printed here).")
@click.option("--must-change", is_flag=True,
              help="With --password-stdin: the user must choose a new password at first sign-in.")
@pass_env
def user_add(env: Env, username: str, role: str, unit_code: str, display_name: str,
             password_stdin: bool, must_change: bool) -> None:
    """Create the account USERNAME, approved at once (the operator's bootstrap on the server).

    Without --password-stdin nobody types a password here: a one-time set-up code (valid 72
    hours) is printed, with which the user chooses their own at /setup. A role that sees
    customer files is reported to the auditors.
    """
    password = _read_secret_stdin() if password_stdin else None
    with env.db.write() as s:
        user = accounts.add_user(s, username, role, unit_code, password,
                                 display_name=display_name, by=CLI)
        user.must_change_password = bool(must_change and password_stdin)
        approvals.record_direct_grant(s, user, CLI)
        code = None if password_stdin else setup.issue_code(s, user, CLI, "new")
        click.echo(f"added user {user.username} ({role}, {unit_code})")
        if code:
            click.echo(f"one-time set-up code (shown once, valid {setup.SETUP_HOURS} hours until "
                       f"{code[1]:%Y-%m-%d %H:%M} UTC): {code[0]}")
            click.echo("the user enters it at /setup and chooses their own password")


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
        rows = [(u.username, u.display_name, u.role, unit.code, "yes" if u.is_active else "no",
                 ", ".join(x for x in ("awaiting approval" if u.awaiting_approval else "",
                                       "awaiting set-up" if not u.password_hash else "") if x))
                for u, unit in accounts.list_users(s)]
    if not rows:
        click.echo("no users yet")
        return
    _table(("username", "name", "role", "unit", "active", "waiting"), rows)


@user_group.command("reset-2fa")
@click.argument("username")
@pass_env
def user_reset_2fa(env: Env, username: str) -> None:
    """Turn USERNAME's second factor off (lost phone, or a key that can no longer open it).

    Their authenticator key and recovery codes are forgotten and their sessions end; leaders,
    auditors and administrators set up a new second factor at their next sign-in. Audited.
    """
    from ..accounts import mfa

    with env.db.write() as s:
        try:
            user = mfa.reset(s, username, by=CLI)
        except LookupError:
            raise BadInput(f"username: no user {username.strip().lower()!r}") from None
        click.echo(f"reset the second factor of {user.username}; their sessions have ended and "
                   "they set up a new one at their next sign-in")
