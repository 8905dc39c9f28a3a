"""`portal doctor`: check a deployment's settings and files (see portal.doctor)."""
from __future__ import annotations

import click

from .. import doctor as checks
from .base import Env, main, pass_env

MARK = {checks.DANGER: "DANGER ", checks.WARNING: "warning", checks.OK: "ok     "}


@main.command("doctor")
@click.option("--quiet", "-q", is_flag=True, help="Print only what is wrong or risky.")
@pass_env
def doctor(env: Env, quiet: bool) -> None:
    """Check this deployment (the PORTAL_* settings it runs with): key file and data directory
    permissions, demo accounts with the demo password, Secure cookies behind an https proxy, the
    database role, the age of the audit entries not yet covered by a signed checkpoint, and the
    checks other parts add. Exit status 1 if anything is dangerous; `portal serve` refuses to
    start with PORTAL_ENV=production until then."""
    findings = checks.run(env.settings)
    for f in findings:
        if quiet and f.level == checks.OK:
            continue
        click.echo(f"{MARK[f.level]}  {f.check}: {f.message}")
    bad = checks.dangers(findings)
    if bad:
        click.echo(f"{len(bad)} dangerous finding(s)", err=True)
        raise SystemExit(1)
