"""`portal` commands: seeding a long audit log for benchmarks."""
from __future__ import annotations

import sys

import click

from .base import Env, Failed, pass_env
from .jobs import bench_group


@bench_group.command("seed-audit")
@click.argument("count", type=click.IntRange(1, 50_000_000))
@click.option("--days", default=730, show_default=True, type=click.IntRange(1, 3650),
              help="Spread the entries evenly over this many days before now.")
@click.option("--batch", default=20000, show_default=True, type=click.IntRange(1, 200_000),
              help="Entries per transaction.")
@click.option("--seed", "rnd_seed", default=1, show_default=True, type=int, help="Random seed.")
@pass_env
def bench_seed_audit(env: Env, count: int, days: int, batch: int, rnd_seed: int) -> None:
    """Append COUNT chained audit entries (views, lists, searches, approvals, a few refusals) by
    the existing users, with a signed checkpoint every PORTAL_AUDIT_CHECKPOINT_EVERY entries as
    a server signs them; `portal audit verify` passes afterwards. Needs `portal demo` first."""
    from ..bench.audit_seed import seed_audit

    signer = env.db.audit_signer
    every = env.settings.audit_checkpoint_every
    with click.progressbar(length=count, label="seeding audit entries", show_eta=True,
                           show_pos=True, file=sys.stderr) as bar:
        try:
            report = seed_audit(env.db, count, signer=signer, every=every, days=days, batch=batch,
                                seed=rnd_seed, progress=bar.update)
        except RuntimeError as exc:
            raise Failed(str(exc)) from None
    click.echo(f"seeded {report.entries} audit entries and {report.checkpoints} signed checkpoint(s) "
               f"in {report.seconds:.1f} s ({report.entries_per_second:,.0f} entries/s); head at "
               f"entry {report.head}")
