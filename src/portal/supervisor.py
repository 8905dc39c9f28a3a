"""The `portal serve` process once its checks are done: uvicorn on the socket the command bound.

`portal serve` (cli/server.py) runs the doctor's checks, secures the database files, creates the
key file and binds the port; with one worker it then serves itself (run()), with several it
replaces itself (exec, same process id) with `python -P -m portal.supervisor --fd N ...`. This
module imports uvicorn and nothing of the command line: the supervisor that stays resident for
the server's lifetime holds uvicorn alone (about 25 MB instead of the whole command line's 75);
its workers fork from it and import only the web application (`portal.app:create_app_from_env`).
"""
from __future__ import annotations

import argparse
import os
import socket
import sys

APP = "portal.app:create_app_from_env"


def config(host: str, port: int, workers: int):
    """uvicorn's settings for the portal."""
    import uvicorn

    return uvicorn.Config(
        APP, factory=True, host=host, port=port, workers=workers,
        # No access log on purpose: URLs can carry personal data (search terms, file ids).
        access_log=False,
        # Forwarded headers are handled by the app itself (PORTAL_TRUST_PROXY), not uvicorn.
        proxy_headers=False,
        log_config=None,  # JSON lines from the portal's own handler (observe/logs.py)
    )


def run(sock: socket.socket, host: str, port: int, workers: int, log_format: str, log_level: str) -> bool:
    """Serve on `sock` until stopped; False if the single server did not start."""
    import uvicorn

    from .observe import logs

    logs.configure(log_format, log_level)
    cfg = config(host, port, workers)
    if workers > 1:
        import multiprocessing

        import uvicorn._subprocess
        from uvicorn.supervisors import Multiprocess

        # Workers fork from this lean process (which imported uvicorn alone, no application):
        # no second interpreter start-up per worker and no multiprocessing resource tracker
        # (12 MB) beside them, as uvicorn's "spawn" brings. Each worker imports the app itself.
        uvicorn._subprocess.spawn = multiprocessing.get_context("fork")
        Multiprocess(cfg, sockets=[sock]).run()
        return True
    cfg.load_app()
    server = uvicorn.Server(config=cfg)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # pragma: no cover
        pass
    return bool(server.started)


def server_environment(environ) -> dict[str, str]:
    """The server's environment: at most two glibc malloc arenas per process (the default, eight
    per core, lets each of a worker's threads keep its own freed memory: several MB per worker
    for no gain here, where the GIL serialises the Python work anyway). An explicit
    MALLOC_ARENA_MAX is kept."""
    return {**environ, "MALLOC_ARENA_MAX": environ.get("MALLOC_ARENA_MAX", "2")}


def command(fd: int, host: str, port: int, workers: int, log_format: str, log_level: str) -> list[str]:
    """The argv `portal serve` execs into (-P: the current directory is not put on sys.path)."""
    return [sys.executable, "-P", "-m", "portal.supervisor", "--fd", str(fd), "--host", host,
            "--port", str(port), "--workers", str(workers), "--log-format", log_format,
            "--log-level", log_level]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="portal.supervisor", description=__doc__.splitlines()[0])
    ap.add_argument("--fd", type=int, required=True, help="the listening socket, bound by `portal serve`")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--log-format", default="json")
    ap.add_argument("--log-level", default="INFO")
    a = ap.parse_args(argv)
    sock = socket.socket(fileno=a.fd)
    os.set_inheritable(a.fd, True)  # uvicorn's spawned workers receive it
    if not run(sock, a.host, a.port, a.workers, a.log_format, a.log_level):
        print("Error: the portal did not start (see the messages above)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
