"""`portal jobs retention`: propose the erasure of lapsed members' files kept past retention."""
from __future__ import annotations

import click

from .base import Env, pass_env
from .jobs import jobs_group


@jobs_group.command("retention")
@pass_env
def jobs_retention(env: Env) -> None:
    """Propose, for a leader above each to approve, the erasure of every file of a lapsed member
    (membership ended) kept longer than the retention setting (/privacy/retention). Nothing is
    erased here; safe to run again (one waiting request per file). On SQLite it also truncates
    the write-ahead log, in case an erasure could not (a long read was open then)."""
    from ..privacy import retention
    from ..subject_keys import truncate_sqlite_wal

    with env.db.write() as s:
        setting = retention.current(s)
        proposed = retention.propose(s)
    click.echo(f"retention: {setting.lapsed_member_days} day(s) after a membership ended")
    for req in proposed:
        click.echo(f"proposed erasure of file {req.file_no} (request {req.id})")
    click.echo(f"{len(proposed)} file(s) proposed for erasure; leaders approve them at /privacy/erasures")
    if truncate_sqlite_wal(env.db.engine, busy_ms=30000) is False:
        click.echo("the write-ahead log could not be truncated (a read stayed open); the next run tries again",
                   err=True)
