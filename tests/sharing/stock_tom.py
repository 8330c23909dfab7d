"""A real, stock TOM Toolkit server for the sharing tests: built as a new TOM user builds one.

In a temporary folder: ``django-admin startproject``, ``tom_setup`` added to its apps and run
non-interactively (its answers on stdin: continue, the default custom-code app, sidereal targets,
no hints; its superuser prompt skips itself without a TTY), then a ``local_settings.py`` (the
hook TOM's generated settings import last) pointing it at a PostgreSQL database of its own on
the test server, ``migrate``, a user with an API token, and ``runserver`` (threaded, as a
partner's development TOM is) on a free port. Nothing of it is kept in the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import requests

from tests.support import free_port

PROJECT = "partnertom"
USERNAME = "partner"
PASSWORD = "a partner password 42"


class StockTomUnavailable(RuntimeError):
    """The stock TOM could not be built or started here (the message says why)."""


@dataclass
class StockTom:
    """A stock TOM Toolkit project served by ``runserver`` on 127.0.0.1:<port>, with its own database."""

    db: dict[str, Any]  # HOST, PORT, USER, PASSWORD of the PostgreSQL server; NAME is this TOM's database
    port: int = field(default_factory=free_port)
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="baton-stock-tom-")))
    token: str = ""
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def project(self) -> Path:
        return self.folder / PROJECT

    @property
    def log(self) -> Path:
        return self.folder / "tom.log"

    def env(self) -> dict[str, str]:
        # The TOM's own settings, not Baton's: none of Baton's Django variables may leak into it.
        drop = {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "PYTHONPATH", "SECRET_KEY", "DEBUG"}
        return {k: v for k, v in os.environ.items() if k not in drop}

    def run(self, *argv: str, cwd: Path | None = None, stdin: str | None = None, timeout: float = 120) -> str:
        result = subprocess.run(  # noqa: S603 - our own interpreter and Django's commands
            [sys.executable, *argv], cwd=cwd or self.project, env=self.env(), input=stdin, capture_output=True,
            text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise StockTomUnavailable(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr[-2000:]}")
        return result.stdout

    def connect(self, dbname: str | None = None) -> Any:
        return psycopg2.connect(dbname=dbname or self.db["NAME"], host=self.db.get("HOST") or None,
                                port=self.db.get("PORT") or None, user=self.db.get("USER") or None,
                                password=self.db.get("PASSWORD") or None)

    def database_create(self) -> None:
        try:
            conn = self.connect("postgres")
        except psycopg2.Error as exc:
            raise StockTomUnavailable(f"PostgreSQL is not reachable for the stock TOM's database: {exc}") from exc
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{self.db["NAME"]}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{self.db["NAME"]}"')
        conn.close()

    def database_drop(self) -> None:
        conn = self.connect("postgres")
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{self.db["NAME"]}" WITH (FORCE)')
        conn.close()

    def build(self) -> None:
        """startproject + tom_setup + local settings + migrate + a user and its token."""
        self.run("-m", "django", "startproject", PROJECT, cwd=self.folder)
        settings_py = self.project / PROJECT / "settings.py"
        text = settings_py.read_text()
        settings_py.write_text(text.replace("'django.contrib.staticfiles',", "'django.contrib.staticfiles',\n    'tom_setup',", 1))
        # Answers: continue? y; custom code app: (default); default target type: 1 (sidereal); hints? n.
        out = self.run("manage.py", "tom_setup", stdin="y\n\n1\nn\n")
        if "Setup complete" not in out:
            raise StockTomUnavailable(f"tom_setup did not complete: {out[-2000:]}")
        db = {"ENGINE": "django.db.backends.postgresql", "NAME": self.db["NAME"], "HOST": self.db.get("HOST") or "",
              "PORT": str(self.db.get("PORT") or ""), "USER": self.db.get("USER") or "",
              "PASSWORD": self.db.get("PASSWORD") or ""}
        # DATA_SHARING as a TOM user writes it, to a Baton named in the environment of a share (share_into).
        (self.project / "local_settings.py").write_text(
            f"import os\nDATABASES = {{'default': {db!r}}}\nALLOWED_HOSTS = ['127.0.0.1', 'localhost']\nDEBUG = False\n"
            "DATA_SHARING = {'baton': {'DISPLAY_NAME': 'Baton', 'BASE_URL': os.environ.get('SHARE_URL', ''),\n"
            "    'USERNAME': os.environ.get('SHARE_USERNAME', ''), 'PASSWORD': os.environ.get('SHARE_PASSWORD', '')}}\n")
        self.database_create()
        self.run("manage.py", "migrate", "--noinput", "-v", "0", timeout=300)
        self.token = self.run("manage.py", "shell", "-c", (
            "from django.contrib.auth.models import User\n"
            "from rest_framework.authtoken.models import Token\n"
            f"user = User.objects.create_user({USERNAME!r}, 'partner@example.org', {PASSWORD!r})\n"
            "print(Token.objects.get_or_create(user=user)[0].key)\n")).strip().splitlines()[-1]

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603
                [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"], cwd=self.project,
                env=self.env(), stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StockTomUnavailable(f"the stock TOM's runserver exited: {self.log.read_text()[-2000:]}")
            try:
                if self.get("api/targets/").status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise StockTomUnavailable(f"the stock TOM did not answer within 60 s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        try:
            self.database_drop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def share_into(self, *, url: str, username: str, password: str, target: dict[str, Any],
                   points: list[dict[str, Any]]) -> str:
        """Make ``target`` and its photometry ``points`` in this TOM and share the points to ``url`` with TOM's own
        ``share_data_with_tom`` (its ``DATA_SHARING`` entry 'baton', basic auth); TOM's answer message."""
        script = (
            "import json\nfrom tom_targets.models import Target\n"
            "from tom_dataproducts.models import PhotometryReducedDatum\n"
            "from tom_dataproducts.sharing import share_data_with_tom\n"
            f"target, _ = Target.objects.get_or_create(**json.loads({json.dumps(json.dumps(target))}))\n"
            f"ids = [PhotometryReducedDatum.objects.create(target=target, **p).pk for p in json.loads({json.dumps(json.dumps(points))})]\n"
            "print(json.dumps(share_data_with_tom('baton', {}, selected_data=ids)))\n")
        env = {**self.env(), "SHARE_URL": url.rstrip("/") + "/", "SHARE_USERNAME": username, "SHARE_PASSWORD": password}
        result = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=self.project, env=env,  # noqa: S603
                                capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise AssertionError(f"the stock TOM's share failed: {result.stderr[-2000:]}")
        return str(json.loads(result.stdout.strip().splitlines()[-1])["message"])

    # --- reading and resetting it -----------------------------------------------------------------

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(self.url + path, params=params, headers={"Authorization": f"Token {self.token}"}, timeout=10)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows straight from the TOM's database (what it stored, whatever its API shows)."""
        conn = self.connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def clear(self) -> None:
        """Forget every target and datum (the user and token stay)."""
        conn = self.connect()
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute("TRUNCATE tom_targets_basetarget RESTART IDENTITY CASCADE")
        finally:
            conn.close()

    def targets(self) -> list[str]:
        return [name for (name,) in self.query("SELECT name FROM tom_targets_basetarget ORDER BY name")]

    def photometry(self) -> list[tuple[Any, ...]]:
        """(target name, brightness, bandpass, unit, telescope, instrument, source_name, source_location) per point."""
        return self.query(
            "SELECT t.name, p.brightness, p.bandpass, p.unit, p.telescope, p.instrument, p.source_name, p.source_location "
            "FROM tom_dataproducts_photometryreduceddatum p JOIN tom_targets_basetarget t ON t.id = p.target_id "
            "ORDER BY p.timestamp, p.id")
