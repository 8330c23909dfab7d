"""A local stand-in for Gemini's ToO trigger endpoint (``POST <odb>/too``), the edge of the world for TOM's module.

Written from Gemini's documented behaviour (as TOM's ``tom_observations.facilities.gemini`` quotes it): the
parameters come as the query string of a POST; ``prog``, ``email``, ``password`` and ``obsnum`` name the program,
the user key and the template observation, which must exist and be On Hold; ``target``, ``ra`` and ``dec`` are
required ("missing" is a 400 naming the parameter); an unparseable ra or dec is a 400; ``exptime`` is an integer of
1-1200 s; any guide-star parameter needs gsra, gsdec and gsprobe ("guide star not completely specified");
``elevationType`` is none, hourAngle or airmass; a window needs ``windowDate`` (YYYY-MM-DD), ``windowTime``
(HH:MM) and an integer ``windowDuration``. A wrong key is a 401. Success clones the template into a new
observation and answers its id as plain text, e.g. ``GS-2026B-Q-101-7``; ``ready=true`` makes it Prepared/Ready
(the trigger), otherwise it stays On Hold.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


@dataclass
class Trigger:
    observation_id: str
    params: dict[str, str]
    status: str


@dataclass
class GeminiStandIn:
    """Programs (id -> {template obsnum: status}), the site key, and every observation it made."""

    password: str = "gs-user-key"
    email: str = "pi@example.org"
    templates: dict[str, dict[str, str]] = field(default_factory=lambda: {"GS-2026B-Q-101": {"1": "On Hold"}})
    triggers: list[Trigger] = field(default_factory=list)
    url: str = ""
    _server: ThreadingHTTPServer | None = None

    def answer(self, params: dict[str, str]) -> tuple[int, str]:
        for name in ("prog", "email", "password", "obsnum"):
            if not params.get(name):
                return 400, f"missing '{name}'"
        if params["email"] != self.email or params["password"] != self.password:
            return 401, "authentication failed: unknown user key"
        program = self.templates.get(params["prog"])
        if program is None:
            return 400, f"program {params['prog']} not found"
        if program.get(params["obsnum"]) != "On Hold":
            return 400, f"template observation {params['prog']}-{params['obsnum']} is not On Hold"
        for name in ("target", "ra", "dec"):
            if not params.get(name):
                return 400, f"missing '{name}'"
        try:
            float(params["ra"]), float(params["dec"])
        except ValueError:
            if not (re.fullmatch(r"\d{1,2}:\d{2}:\d{2}(\.\d+)?", params["ra"])
                    and re.fullmatch(r"[+-]?\d{1,2}:\d{2}:\d{2}(\.\d+)?", params["dec"])):
                return 400, "could not parse ra/dec"
        if "exptime" in params:
            if not params["exptime"].isdigit() or not 1 <= int(params["exptime"]) <= 1200:
                return 400, "exptime must be an integer between 1 and 1200 seconds"
        if any(params.get(k) for k in ("gstarget", "gsra", "gsdec", "gsprobe", "gsmags")) and not all(
            params.get(k) for k in ("gsra", "gsdec", "gsprobe")
        ):
            return 400, "guide star not completely specified"
        if params.get("elevationType", "none") not in ("none", "hourAngle", "airmass"):
            return 400, "elevationType must be none, hourAngle or airmass"
        if params.get("windowDate") or params.get("windowTime") or params.get("windowDuration"):
            if not (re.fullmatch(r"\d{4}-\d{2}-\d{2}", params.get("windowDate", ""))
                    and re.fullmatch(r"\d{2}:\d{2}(:\d{2})?", params.get("windowTime", ""))
                    and params.get("windowDuration", "").isdigit()):
                return 400, "timing window needs windowDate YYYY-MM-DD, windowTime HH:MM and integer windowDuration"
        number = len(program) + 1
        program[str(number)] = "Prepared/Ready" if params.get("ready", "true") == "true" else "On Hold"
        observation_id = f"{params['prog']}-{number}"
        self.triggers.append(Trigger(observation_id=observation_id, params=params, status=program[str(number)]))
        return 200, observation_id

    def start(self) -> str:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                parsed = urlparse(self.path)
                if parsed.path.rstrip("/") != "/too":
                    self.send_error(404)
                    return
                params = {k: v[-1] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()}
                status, text = standin.answer(params)
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
