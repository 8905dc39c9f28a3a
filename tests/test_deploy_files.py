"""deploy/ stays true to the code: every PORTAL_* setting is explained in the environment
template, and every scheduled job has a timer that runs an existing command."""
from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from portal.cli import main

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def test_the_environment_template_explains_every_setting_config_reads():
    names = set(re.findall(r'_env\("([A-Z_]+)"', (ROOT / "src" / "portal" / "config.py").read_text()))
    assert {"DATABASE_URL", "KEY_FILE", "TRUST_PROXY", "ENV", "METRICS_TOKEN"} <= names
    template = (DEPLOY / "portal.env.example").read_text()
    documented = set(re.findall(r"^#?\s*PORTAL_([A-Z_]+)=", template, re.M))
    # ALERT_GRANT_REASON_MIN is the old name GRANT_REASON_MIN still accepts.
    assert names - documented - {"ALERT_GRANT_REASON_MIN"} == set()


def test_each_job_timer_runs_a_job_the_command_line_has():
    jobs = CliRunner().invoke(main, ["jobs", "--help"]).output
    timers = {p.stem.removeprefix("portal-"): p.read_text() for p in (DEPLOY / "systemd").glob("portal-*.timer")}
    for job in ("daily", "checkpoint", "alerts", "purge-sessions", "send", "retention", "overdue-reminders",
                "coupons", "audit-summary"):
        assert f"Unit=portal-job@{job}.service" in timers[job]
        assert re.search(rf"^\s+{job}\s", jobs, re.M), job
    assert "Unit=portal-backup.service" in timers["backup"]
    backup = CliRunner().invoke(main, ["backup", "--help"]).output
    assert re.search(r"^\s+create\s", backup, re.M) and re.search(r"^\s+prune\s", backup, re.M)
    assert not any("PLACEHOLDER" in t for t in timers.values())
