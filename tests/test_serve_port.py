"""The first hour: `portal serve` says "serving on …" only once the port is its own, and says plainly
when the port is taken; `portal demo` prints an address only when it knows it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

from click.testing import CliRunner

from portal.cli import main


def _env(settings) -> dict:
    return {**os.environ, "PORTAL_DATABASE_URL": settings.database_url,
            "PORTAL_KEY_FILE": str(settings.key_file), "PYTHONUNBUFFERED": "1"}


def test_serve_on_a_port_in_use_says_so_and_exits_non_zero(settings):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = CliRunner().invoke(main, ["serve", "--port", str(port)], env=_env(settings))
    assert r.exit_code != 0
    assert f"port {port} on 127.0.0.1 is already in use" in r.output
    assert "serving on" not in r.output


def test_serve_says_serving_on_once_the_port_answers(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "portal.cli", "serve", "--port", str(port)],
                            env=_env(settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"serving on http://127.0.0.1:{port} "), line
        # The port is bound when the line appears: a connection is accepted (queued) at once.
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_hands_its_socket_to_a_supervisor_that_imports_no_command_line(settings, monkeypatch):
    """`portal serve` execs (same process id) into portal.supervisor with the bound socket; that
    module keeps neither the command line nor the database layer resident in the supervisor."""
    from portal.cli import server as server_cli

    execs = []
    monkeypatch.setattr(os, "execve", lambda path, argv, env: execs.append((argv, env)))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    r = CliRunner().invoke(main, ["serve", "--port", str(port), "--workers", "2"], env=_env(settings))
    [(argv, env)] = execs
    assert env["MALLOC_ARENA_MAX"] == "2" and env["PORTAL_DATABASE_URL"] == settings.database_url
    assert argv[1:4] == ["-P", "-m", "portal.supervisor"] and argv[argv.index("--workers") + 1] == "2"
    assert r.exit_code != 0  # execv did not replace this process: serve says it did not start
    code = ("import sys, portal.supervisor; "
            "print(sorted(m for m in sys.modules if m.startswith(('portal.cli', 'sqlalchemy', 'litestar'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert server_cli.hand_over is server_cli._exec_supervisor


def test_two_workers_fork_from_the_lean_supervisor_and_stop_with_it(settings):
    """`portal serve --workers 2`: the supervisor (same process id as the command) and two workers
    forked from it, no multiprocessing resource tracker beside them; SIGTERM to the supervisor
    stops them all."""
    import signal

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "portal.cli", "serve", "--port", str(port), "--workers", "2"],
                            env=_env(settings), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().startswith(f"serving on http://127.0.0.1:{port} (2 workers)")
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        with open(f"/proc/{proc.pid}/cmdline", "rb") as fh:
            assert b"portal.supervisor" in fh.read()  # exec'd in place: the same process id
        children = _children(proc.pid)
        while len(children) < 2 and time.monotonic() < deadline:  # both workers started
            time.sleep(0.2)
            children = _children(proc.pid)
        cmdlines = [open(f"/proc/{c}/cmdline", "rb").read() for c in children]
        assert len(children) == 2 and not any(b"resource_tracker" in c for c in cmdlines), cmdlines
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not [c for c in children if os.path.exists(f"/proc/{c}")]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(c) for c in fh.read().split()]
    except OSError:
        return []


def test_demo_prints_the_address_it_is_given_and_none_it_cannot_know(settings):
    env = _env(settings)
    told = CliRunner().invoke(main, ["demo", "--url", "http://127.0.0.1:8123"], env=env)
    assert told.exit_code == 0, told.output
    assert "sign in at http://127.0.0.1:8123/login" in told.output
    untold = CliRunner().invoke(main, ["demo"], env=env)
    assert "8000" not in untold.output.split("membership programme:")[-1]
    assert "sign in at the address it prints" in untold.output
