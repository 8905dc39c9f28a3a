"""`portal` commands: seeding memberships and two years of purchases for the report benchmarks."""
from __future__ import annotations

import sys

import click

from .base import Env, Failed, _read_secret_stdin, pass_env
from .jobs import bench_group


@bench_group.command("seed-purchases")
@click.option("--share", default=0.9, show_default=True, type=click.FloatRange(0.01, 1.0),
              help="Share of the files (not members yet) that join the programme.")
@click.option("--batch", default=5000, show_default=True, type=click.IntRange(1, 100_000),
              help="Files per transaction.")
@click.option("--seed", "rnd_seed", default=1, show_default=True, type=int, help="Random seed.")
@click.option("--password-stdin", is_flag=True,
              help="Password for the company-wide leader `lhq`, if added (else as `portal demo`).")
@pass_env
def bench_seed_purchases(env: Env, share: float, batch: int, rnd_seed: int, password_stdin: bool) -> None:
    """Make the customer files that are not members yet into members (cards, tier history) with
    purchases (lines, points) from the day they joined to yesterday, two years at most; run after
    `portal bench seed N`. Adds the leader `lhq` at the root unit for the company-wide reports, and
    rebuilds the large purchases' follow-ups (what the visits due list reads) from the purchases."""
    from .. import demo as demo_data
    from ..bench.seed_purchases import not_a_member, seed_purchases

    password = demo_data.demo_password(_read_secret_stdin() if password_stdin else None)
    with env.db.read() as s:
        from sqlalchemy import func, select

        from ..customers.models import CustomerFile
        todo = s.scalar(select(func.count()).select_from(CustomerFile).where(not_a_member())) or 0
    with click.progressbar(length=todo, label="seeding members and purchases", show_eta=True,
                           show_pos=True, file=sys.stderr) as bar:
        try:
            report = seed_purchases(env.db, share=share, batch=batch, seed=rnd_seed, password=password,
                                    progress=bar.update)
        except RuntimeError as exc:
            raise Failed(str(exc)) from None
    from ..service import follow_ups
    with env.db.write() as s:  # the large purchases' follow-ups (the rows went in without the ORM's listeners)
        follow_ups.rebuild(s)
    click.echo(f"seeded {report.members} members with {report.purchases} purchases ({report.upgrades} upgrades) "
               f"from {report.files} files: {report.rows} rows in {report.seconds:.1f} s "
               f"({report.rows_per_second:,.0f} rows/s)")
