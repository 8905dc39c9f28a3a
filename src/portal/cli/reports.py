"""`portal reports`: the monthly unit report from the command line (for a scheduled job)."""
from __future__ import annotations

from pathlib import Path

import click

from ..accounts.actor import Actor
from ..org import service as org
from ..reports import exporting, monthly
from ..reports.filters import ReportFilter, UnitChoice, month_period
from .base import CLI, BadInput, Env, main, pass_env


@main.group("reports")
def reports_group() -> None:
    """Reports and analytics (figures only, never personal data; see /reports)."""


@reports_group.command("monthly")
@click.option("--unit", "unit_code", required=True, help="Unit code, e.g. 755A (its units below are included).")
@click.option("--month", required=True, help="The month, YYYY-MM.")
@click.option("--format", "fmt", type=click.Choice(exporting.FORMATS), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (default: standard output; XLSX needs --out).")
@pass_env
def reports_monthly(env: Env, unit_code: str, month: str, fmt: str, out: Path | None) -> None:
    """The monthly unit report of UNIT for MONTH: spend, new members and cards, tier moves, points and
    top products, as a leader of the unit sees it (small groups suppressed); audited as an export."""
    if not monthly.valid_month(month):
        raise BadInput("month: enter a month as YYYY-MM")
    if fmt == "xlsx" and out is None:
        raise BadInput("--out: XLSX is binary; name a file to write it to")
    y, m = (int(x) for x in month.split("-"))
    with env.db.write() as s:
        unit = org.unit_by_code(s, unit_code)
        if unit is None:
            raise BadInput(f"unit: no unit with code {unit_code}")
        # The operator reads the unit as its leader would: the unit and the units below it.
        reader = Actor(user_id=None, username="cli", role="leader", unit_id=unit.id, unit_path=unit.path)
        rep = monthly.monthly(s, reader, ReportFilter(month_period(y, m),
                                                      UnitChoice(unit.code, unit.name, unit.path, unit.depth)))
        result = exporting.export_report(s, CLI, rep, fmt, scope=f"unit={unit.code}&period={month}")
    if out is None:
        stream = click.get_binary_stream("stdout")
        stream.write(result.content)
        stream.flush()
    else:
        out.write_bytes(result.content)
        click.echo(f"wrote {out} ({result.rows} rows, sha256 {result.sha256})", err=True)
