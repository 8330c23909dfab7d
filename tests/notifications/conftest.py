"""Fixtures of the notifications tests: a real SMTP server (aiosmtpd), a local HTTP endpoint posing as
Slack (incoming webhooks and the Web API), people and teams, and a Celery worker that can reach both.

Both servers run for the whole session on fixed free ports, so the Celery worker subprocess, which
reads ``EMAIL_URL`` and ``SLACK_API_URL`` from its environment when it starts, knows where they are.
Tests stop and start them to play "down, then back".
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.support import free_port, wait_for  # noqa: F401 - wait_for is imported from here by the tests

BOT_TOKEN = "xoxb-test-token"


# --- a real SMTP server ------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


class SMTPSink:
    """An aiosmtpd SMTP server on 127.0.0.1:<port> that keeps what it receives; ``refuse`` rejects addresses (550)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.refuse: set[str] = set()
        self.controller: Controller | None = None
        self.lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    @property
    def running(self) -> bool:
        return self.controller is not None

    def start(self) -> None:
        if self.controller is None:
            self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
            self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if address in r.rcpt_tos]


# --- a local endpoint posing as Slack -------------------------------------------------------------


@dataclass
class SlackPost:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class SlackSink:
    """Answers POSTs like Slack: ``/hooks/<name>`` (incoming webhooks) and ``/api/chat.postMessage`` (bot token).

    ``failures`` is a queue of (status, body, headers) answered instead of success, one per request.
    """

    port: int = field(default_factory=free_port)
    posts: list[SlackPost] = field(default_factory=list)
    failures: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def webhook(self, name: str) -> str:
        return f"{self.url}/hooks/{name}"

    def start(self) -> None:
        if self.server is not None:
            return
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    body = json.loads(raw or "{}")
                else:
                    body = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
                with sink.lock:
                    failure = sink.failures.pop(0) if sink.failures else None
                    if failure is None:
                        sink.posts.append(SlackPost(self.path, dict(self.headers), body))
                if failure is not None:
                    status, text, headers = failure
                elif self.path.startswith("/api/chat.postMessage"):
                    if self.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
                        status, text, headers = 200, json.dumps({"ok": False, "error": "invalid_auth"}), {}
                    else:
                        status, text, headers = 200, json.dumps({"ok": True, "channel": body.get("channel"),
                                                                  "ts": f"1700000000.{len(sink.posts):06d}"}), {}
                else:
                    status, text, headers = 200, "ok", {}
                payload = text.encode()
                self.send_response(status)
                content_type = "application/json" if text.startswith("{") else "text/plain"
                self.send_header("Content-Type", f"{content_type}; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def to(self, path: str) -> list[SlackPost]:
        with self.lock:
            return [p for p in self.posts if p.path == path]


# --- session servers, known to the worker -------------------------------------------------------


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SMTPSink]:
    sink = SMTPSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def slack_sink() -> Iterator[SlackSink]:
    sink = SlackSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def notification_servers_env(smtp_sink: SMTPSink, slack_sink: SlackSink) -> dict[str, str]:
    """The environment a worker needs to reach the test servers (set in os.environ for worker subprocesses)."""
    env = {
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_sink.port}",
        "EMAIL_TIMEOUT": "5",
        "SLACK_API_URL": f"{slack_sink.url}/api/",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
    }
    os.environ.update(env)
    return env


def _environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


@pytest.fixture
def notifications_worker(notification_servers_env: dict[str, str], celery_worker_process: Any) -> Any:
    """The session's Celery worker, restarted if it was started (by another app's tests) without our servers."""
    proc = celery_worker_process.proc
    alive = proc is not None and proc.poll() is None
    if not alive or any(_environ_of(proc.pid).get(k) != v for k, v in notification_servers_env.items()):
        celery_worker_process.stop()
        celery_worker_process.start()
    return celery_worker_process


# --- per-test servers and settings ---------------------------------------------------------------


@pytest.fixture
def smtp(smtp_sink: SMTPSink, settings: Any) -> Iterator[SMTPSink]:
    """The SMTP server, empty and up; in-process sends go to it."""
    smtp_sink.start()
    with smtp_sink.lock:
        smtp_sink.received.clear()
    smtp_sink.refuse.clear()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_sink.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    yield smtp_sink
    smtp_sink.start()  # a test that stopped it leaves it up for the next


@pytest.fixture
def slack(slack_sink: SlackSink, settings: Any) -> Iterator[SlackSink]:
    """The Slack endpoint, empty and up; in-process sends use its Web API and the site webhook is off."""
    slack_sink.start()
    with slack_sink.lock:
        slack_sink.posts.clear()
        slack_sink.failures.clear()
    settings.SLACK_API_URL = f"{slack_sink.url}/api/"
    settings.SLACK_BOT_TOKEN = ""
    settings.SLACK_WEBHOOK_URL = ""
    yield slack_sink
    slack_sink.start()


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def notification_settings(settings: Any) -> None:
    """Known knobs for every test, whatever the environment says (policy changes in set-ups notify nobody here)."""
    settings.BATON_BASE_URL = "https://baton.example.org"
    settings.BATON_POLICIES = {**settings.BATON_POLICIES, "NOTIFY": ""}
    settings.BATON_NOTIFICATIONS = {**settings.BATON_NOTIFICATIONS, "RATE_LIMIT_MESSAGES": 10, "RATE_LIMIT_WINDOW_S": 3600,
                                    "BURST_DIGEST_DELAY_S": 300, "QUIET_HOURS_START": "", "QUIET_HOURS_END": "",
                                    "DEFAULT_TIMEZONE": "UTC", "DEFAULT_CHANNELS": ["email", "inbox"],
                                    "URGENT_EVENTS": ["request.failed", "request.expired"], "RETRY_BACKOFF_S": 30,
                                    "RETRY_BACKOFF_MAX_S": 3600, "MAX_ATTEMPTS": 20, "SLACK_DEFAULT_CHANNEL": ""}


# --- people and teams ------------------------------------------------------------------------------


@dataclass
class People:
    team: Any  # a plain auth.Group (the default rule applies)
    alice: Any
    bob: Any
    outsider: Any


@pytest.fixture
def people(django_user_model: Any) -> People:
    from django.contrib.auth.models import Group

    def make(name: str, **extra: Any) -> Any:
        return django_user_model.objects.create_user(username=name, password="a long test password 42",
                                                     email=f"{name}@example.org", **extra)

    team = Group.objects.create(name="Bulge watchers")
    alice, bob, outsider = make("alice"), make("bob"), make("olga")
    team.user_set.add(alice, bob)
    return People(team=team, alice=alice, bob=bob, outsider=outsider)


@pytest.fixture
def api_client_for() -> Callable[[Any], Any]:
    """An API client signed in as the given user."""
    from rest_framework.test import APIClient

    def make(user: Any) -> Any:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make
