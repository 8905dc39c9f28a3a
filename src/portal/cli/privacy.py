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
    erased here; safe to run again (one waiting request per file)."""
    from ..privacy import retention

    with env.db.write() as s:
        setting = retention.current(s)
        proposed = retention.propose(s)
    click.echo(f"retention: {setting.lapsed_member_days} day(s) after a membership ended")
    for req in proposed:
        click.echo(f"proposed erasure of file {req.file_no} (request {req.id})")
    click.echo(f"{len(proposed)} file(s) proposed for erasure; leaders approve them at /privacy/erasures")
