"""Keep astropy off the network: bundled IERS tables only, no downloads.

Baton runs where only package registries are reachable. astropy, left to its
defaults, tries to download fresh IERS Earth-orientation tables (and refuses
times more than 30 days past the bundled predictions), the observatory site
registry and solar-system ephemerides. This module switches all of that off,
so every computation uses the data shipped in ``astropy-iers-data`` and the
built-in (ERFA) ephemerides.
"""

from __future__ import annotations

from astropy.utils import iers
from astropy.utils.data import conf as data_conf

__all__ = ["configure_offline_astropy"]


def configure_offline_astropy() -> None:
    """Configure astropy so that nothing ever touches the network.

    Contract:
    - IERS tables come from the bundled ``astropy-iers-data`` package only
      (``iers.conf.auto_download = False``), and their age is never checked
      (``iers.conf.auto_max_age = None``); without the latter, any time more
      than 30 days past the bundled predictions raises an error.
    - ``astropy.utils.data`` may not download anything
      (``conf.allow_internet = False``), which also makes
      ``EarthLocation.of_site`` and JPL ephemerides fail fast instead of
      hanging: define sites by their coordinates and use the built-in
      ephemeris.
    - Idempotent and cheap: safe to call from every entry point.
    """
    iers.conf.auto_download = False
    iers.conf.auto_max_age = None
    data_conf.allow_internet = False
