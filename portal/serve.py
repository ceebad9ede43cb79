"""Start the portal's HTTP server: ``python -m portal.serve`` (the Procfile's ``portal`` line).

``PORTAL_SERVER=granian`` (the default, `make run` and production) execs granian, a
WSGI server whose HTTP side is Rust, chosen over gunicorn by measurement
(bench/portal_server.py, docs/performance.md). ``PORTAL_SERVER=runserver`` (`make dev`)
execs Django's development server with autoreload instead.

Settings are read with tollway.env's rules; a bad value exits with code 2 and a message
naming the variable, before anything is started (bin/respawn does not restart exit 2:
restarting would not fix a setting). The process replaces itself with the server (exec),
so signals from the supervisor reach the server directly.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from tollway import env

SERVERS = ("granian", "runserver")


def server_argv(environ: Mapping[str, str] | None = None) -> list[str]:
    """The command line of the configured server; raises env.EnvError for a bad setting."""
    server = env.read_choice("PORTAL_SERVER", "granian", SERVERS, environ)
    host = env.read_str("PORTAL_HOST", "127.0.0.1", environ)
    port = env.read_int("PORTAL_PORT", 8000, environ, minimum=1, maximum=65535)
    if server == "runserver":
        # Django's development server: autoreload on, DEBUG's static file serving.
        return [sys.executable, "manage.py", "runserver", f"{host}:{port}"]
    workers = env.read_int("PORTAL_WORKERS", 2, environ, minimum=1, maximum=256)
    threads = env.read_int("PORTAL_THREADS", 4, environ, minimum=1, maximum=256)
    return [
        sys.executable, "-m", "granian",
        "--interface", "wsgi",
        "--host", host,
        "--port", str(port),
        "--workers", str(workers),
        # Python threads per worker: a slow request (a report, an export) holds one, not the whole worker.
        "--blocking-threads", str(threads),
        "--no-ws",
        # A worker that dies is replaced by granian itself; bin/respawn restarts granian if it exits.
        "--respawn-failed-workers",
        # Graceful stop, bounded: within honcho's 5 s before it kills everything.
        "--workers-kill-timeout", "4",
        "--access-log",
        "portal.wsgi:application",
    ]


def main() -> int:
    try:
        argv = server_argv()
    except env.EnvError as exc:
        print(f"portal: configuration error: {exc}", file=sys.stderr)
        return 2
    print("portal: " + " ".join(["python", *argv[1:]]), file=sys.stderr, flush=True)
    os.execv(argv[0], argv)  # noqa: S606  (argv is ours: the interpreter and fixed options)


if __name__ == "__main__":
    sys.exit(main())
