"""`portal` commands: POS terminals and their API keys."""
from __future__ import annotations


import click



from .base import (CLI, Env, _table, main, pass_env)


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
    from ..pos import terminals

    with env.db.write() as s:
        t, key = terminals.issue_key(s, CLI, name, unit_code)
        click.echo(f"added terminal {t.id} {t.name} ({unit_code}), key prefix {t.key_prefix}")
    click.echo(key)
    click.echo("copy this key into the terminal now: it is not shown again", err=True)


@terminal_group.command("list")
@pass_env
def terminal_list(env: Env) -> None:
    """List terminals: unit, key prefix, created, last used, revoked (times in UTC)."""
    from ..pos import terminals

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
    from ..pos import terminals

    with env.db.write() as s:
        t = terminals.revoke(s, CLI, terminal_id, reason)
        click.echo(f"revoked terminal {t.id} {t.name} (key prefix {t.key_prefix})")


@terminal_group.command("purge-replies")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3650),
              help="Keep the stored answers to idempotent API calls this many days.")
@pass_env
def terminal_purge_replies(env: Env, days: int) -> None:
    """Forget old stored answers to API calls (run it from cron, like `portal jobs`)."""
    from ..pos import idempotency

    with env.db.write() as s:
        n = idempotency.purge(s, days)
    click.echo(f"forgot {n} stored API answer(s) older than {days} day(s)")
