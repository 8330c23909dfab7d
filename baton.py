#!/usr/bin/env python3
"""Baton's front door: ``python3 baton.py run`` starts everything, ``python3 baton.py test`` tests it.

This file needs only the Python standard library. It makes the virtual
environment (``.venv``) and installs the project into it when
``pyproject.toml`` has changed since the last install, then hands over to
``tomsite.devstack``, which starts PostgreSQL and Redis when none is
configured and runs the requested command. See ``python3 baton.py --help``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("BATON_VENV", ROOT / ".venv")).resolve()
STAMP = VENV / ".baton-installed"


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def _ensure_venv() -> Path:
    """Create the venv and (re)install the project when pyproject.toml changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs under any python3, before the venv exists
        sys.exit(f"Baton needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    python = _venv_python()
    if not python.exists():
        print(f"baton: creating the virtual environment in {VENV} ...", flush=True)
        venv.create(VENV, with_pip=True)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text().strip() != digest:
        print("baton: installing Baton and its dependencies (first run takes a few minutes) ...", flush=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)  # noqa: S603
        subprocess.run(  # noqa: S603 - fixed arguments
            [python, "-m", "pip", "install", "--progress-bar", "on", "-e", f"{ROOT}[dev]"], check=True
        )
        STAMP.write_text(digest)
    return python


def main(argv: list[str]) -> int:
    if Path(sys.prefix).resolve() != VENV:
        python = _ensure_venv()
        os.execv(python, [str(python), str(Path(__file__).resolve()), *argv])  # noqa: S606
    sys.path.insert(0, str(ROOT))
    from tomsite.devstack import main as devstack_main

    return devstack_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
