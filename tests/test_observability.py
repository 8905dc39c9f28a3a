"""Observability: one JSON log line per request without personal data, /metrics behind a token or
an address list, /readyz."""
from __future__ import annotations

import dataclasses
import io
import json

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from portal.app import create_app
from portal.cli import main
from portal.observe import logs

from .browser import post, sign_in, signed_in
from .factories import PASSWORD, customer_input
from .pg import as_owner
from .test_customers_web import FORM

BASE = "http://testserver.local"


@pytest.fixture
def log_lines():
    buf = io.StringIO()
    logs.configure("json", "INFO", stream=buf)

    def lines() -> list[dict]:
        return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]
    lines.text = buf.getvalue  # type: ignore[attr-defined]
    yield lines
    logs.configure("json", "WARNING")  # leave the handler quiet for the tests that follow


def test_each_request_is_one_json_line_with_its_id_user_route_status_and_duration(client, story, log_lines):
    signed_in(client, "alice")
    file_id = story.files["alice"][0]
    r = client.get(f"/customers/{file_id}")
    assert r.status_code == 200
    rid = r.headers["x-request-id"]
    [line] = [e for e in log_lines() if e.get("request_id") == rid]
    assert line["msg"] == "request" and line["user_id"] == story.users["alice"]
    assert (line["method"], line["route"], line["status"]) == ("GET", "/customers/{file_id}", 200)
    assert isinstance(line["duration_ms"], float) and line["level"] == "info"
    assert file_id not in json.dumps(line)  # the template, not the address
    missing = client.get("/no/such/page")
    [line] = [e for e in log_lines() if e.get("request_id") == missing.headers["x-request-id"]]
    assert (line["route"], line["status"]) == ("unmatched", 404)


def test_after_a_journey_the_log_holds_no_names_mobiles_id_numbers_or_secrets(client, story, log_lines):
    people = [customer_input(n) for n in range(7)]
    sign_in(client, "alice", "not-her-password-at-all")
    signed_in(client, "alice")
    client.get("/customers")
    for q in (people[0].mobile, people[0].id_number, people[1].name, people[0].mobile[-4:]):
        assert post(client, "/customers/search", {"q": q}).status_code == 200
    for fid in story.files["alice"]:
        client.get(f"/customers/{fid}")
        client.get(f"/customers/{fid}/fields/mobile")
    created = post(client, "/customers/new", FORM)
    assert created.status_code == 303
    client.get(created.headers["location"])
    assert post(client, "/customers/new", {**FORM, "id_number": "110105199003071230"}).status_code in (400, 409)
    client.get(f"/customers/{story.files['charlie'][0]}")  # refused and audited
    session = client.cookies.get("portal_session")
    text_ = log_lines.text()
    assert text_.count('"msg":"request"') >= 15
    secrets = [p.name for p in people] + [p.mobile for p in people] + [p.id_number for p in people]
    secrets += [FORM["name"], FORM["mobile"], FORM["id_number"], PASSWORD, "not-her-password-at-all",
                session, people[0].mobile[-4:] + '"', "偏好茅台", "深圳市南山区"]
    assert [s for s in secrets if s and s in text_] == []


def _sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def metrics_app(settings):
    return create_app(dataclasses.replace(settings, metrics_token="s3cret-metrics-token",
                                          metrics_allow=("10.9.0.0/16",), trust_proxy=True))


def test_metrics_answer_only_the_token_or_an_allowed_address(client, metrics_app):
    assert client.get("/metrics").status_code == 404  # nothing configured: off
    with TestClient(app=metrics_app, base_url=BASE) as c:
        assert c.get("/metrics").status_code == 404
        assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
        assert c.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 404
        r = c.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        assert c.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7, 10.9.4.2"}).status_code == 200


def test_metrics_count_requests_audit_appends_denials_throttles_jobs_and_the_pool(settings, story, metrics_app):
    route = "/customers/{file_id}"
    before = (_sample("portal_http_requests_total", method="GET", route=route, status="200"),
              _sample("portal_http_request_duration_seconds_count", method="GET", route=route),
              _sample("portal_audit_appends_total", outcome="allowed"),
              _sample("portal_denials_total", action="customer.view"),
              _sample("portal_signins_throttled_total", step="password"),
              _sample("portal_job_runs_total", job="checkpoint"))
    with TestClient(app=metrics_app, base_url=BASE) as c:
        signed_in(c, "alice")
        assert c.get(f"/customers/{story.files['alice'][0]}").status_code == 200
        assert c.get(f"/customers/{story.files['charlie'][0]}").status_code == 403
    with TestClient(app=metrics_app, base_url=BASE) as c:
        for _ in range(6):
            sign_in(c, "bob", "wrong-password-for-bob")
    env = {"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_KEY_FILE": str(settings.key_file)}
    assert CliRunner().invoke(main, ["jobs", "checkpoint"], env=env).exit_code == 0
    after = (_sample("portal_http_requests_total", method="GET", route=route, status="200"),
             _sample("portal_http_request_duration_seconds_count", method="GET", route=route),
             _sample("portal_audit_appends_total", outcome="allowed"),
             _sample("portal_denials_total", action="customer.view"),
             _sample("portal_signins_throttled_total", step="password"),
             _sample("portal_job_runs_total", job="checkpoint"))
    grew = [a - b for a, b in zip(after, before)]
    assert grew[0] == 1 and grew[1] == 2 and grew[2] >= 2 and grew[3] == 1 and grew[4] >= 1 and grew[5] == 1
    with TestClient(app=metrics_app, base_url=BASE) as c:
        body = c.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"}).text
    for name in ("portal_http_requests_total{", "portal_http_request_duration_seconds_bucket{",
                 "portal_audit_appends_total{", "portal_denials_total{", "portal_signins_throttled_total{",
                 "portal_job_runs_total{", "portal_db_pool_connections_in_use ",
                 "portal_db_pool_connections_open "):
        assert name in body, name


def test_readyz_checks_the_database_its_migrations_and_the_key_file(settings, client):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"ready": True, "database": "ok", "migrations": "ok", "key_file": "ok"}
    eng = create_engine(as_owner(settings.database_url), poolclass=NullPool)
    with eng.begin() as c:  # the owner rolls the schema's version back, as a half-done upgrade would
        c.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    eng.dispose()
    settings.key_file.chmod(0o000)
    try:
        r = client.get("/readyz")
        body = r.json()
        assert r.status_code == 503 and body["ready"] is False and body["database"] == "ok"
        assert body["migrations"] == "not at the newest revision"
        import os
        if os.geteuid() != 0:  # root reads any file
            assert body["key_file"].startswith("unreadable")
    finally:
        settings.key_file.chmod(0o600)


def test_with_a_shared_directory_metrics_sum_every_process_and_job(tmp_path):
    """PROMETHEUS_MULTIPROC_DIR: what a job or another server counted shows in any one's /metrics."""
    import os
    import subprocess
    import sys
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    count = ("from portal.observe import metrics as m; assert m.MULTIPROCESS; "
             "m.job_finished('daily', True); m.REQUESTS.labels('GET', '/healthz', '200').inc()")
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True, timeout=60)
    out = subprocess.run([sys.executable, "-c", "from portal.observe import metrics as m; "
                          "print(m.exposition()[0].decode())"], env=env, check=True, timeout=60,
                         capture_output=True, text=True).stdout
    assert 'portal_job_runs_total{job="daily"} 2.0' in out
    assert 'portal_http_requests_total{method="GET",route="/healthz",status="200"} 2.0' in out
