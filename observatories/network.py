"""Load the default facility network (``data/default_network.json``) into the database, idempotently.

Used by the data migration ``0002_default_network`` (with the historical
models) and by ``observatories/demo.py``. Sites, facilities and instruments are
matched by ``code``: descriptive fields follow the file, while what an operator
sets per installation (``enabled``, ``api_url``, ``api_token``, ``simulated``,
``adapter``) is only set when the row is created.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_NETWORK_PATH = Path(__file__).resolve().parent / "data" / "default_network.json"

_SITE_FIELDS = (
    "name",
    "latitude_deg",
    "longitude_deg",
    "elevation_m",
    "timezone",
    "continent",
    "clear_fraction",
    "clear_spell_nights",
    "cloudy_spell_nights",
    "source",
)
_FACILITY_FIELDS = ("name", "telescope_class", "aperture_m", "enclosure", "telescope", "default_proposal")
_INSTRUMENT_FIELDS = (
    "kind", "filters", "readout_s", "limiting_mag_60s", "pixel_scale", "instrument_type", "optical_element_group",
    "fixed_optical_elements", "readout_modes", "default_readout_mode", "acquisition_mode", "guiding_mode",
    "guiding_optional",
)


@dataclass(frozen=True)
class NetworkLoadResult:
    """How many rows the load created and how many it brought up to date."""

    created: int
    updated: int
    sites: int
    facilities: int
    instruments: int


def network_read(*, path: Path = DEFAULT_NETWORK_PATH) -> list[dict[str, Any]]:
    """Read and return the network file (a list of sites, each with its facilities and instruments)."""
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of sites")
    return data


def network_load(
    *,
    path: Path = DEFAULT_NETWORK_PATH,
    site_model: Any = None,
    facility_model: Any = None,
    instrument_model: Any = None,
) -> NetworkLoadResult:
    """Create or update every site, facility and instrument of the network file; return the counts.

    Idempotent: a second run creates nothing and updates nothing. The model
    arguments let a migration pass its historical models; by default the
    current ones are used. Run it inside a transaction (migrations and the demo
    command do) so that a bad file leaves nothing half-loaded.
    """
    if site_model is None or facility_model is None or instrument_model is None:
        from observatories.models import Facility, Instrument, Site

        site_model, facility_model, instrument_model = Site, Facility, Instrument
    created = updated = 0
    n_sites = n_facilities = n_instruments = 0

    def upsert(model: Any, lookup: dict[str, Any], values: dict[str, Any], create_only: dict[str, Any]) -> Any:
        nonlocal created, updated
        # An older migration's historical model lacks the fields added since: set only those it has.
        known = {f.name for f in model._meta.get_fields()}
        values = {k: v for k, v in values.items() if k in known}
        row = model.objects.filter(**lookup).first()
        if row is None:
            created += 1
            return model.objects.create(**lookup, **values, **create_only)
        changed = [name for name, value in values.items() if getattr(row, name) != value]
        if changed:
            for name in changed:
                setattr(row, name, values[name])
            row.save(update_fields=changed)
            updated += 1
        return row

    for site_spec in network_read(path=path):
        site = upsert(site_model, {"code": site_spec["code"]}, {k: site_spec[k] for k in _SITE_FIELDS}, {})
        n_sites += 1
        for facility_spec in site_spec["facilities"]:
            facility = upsert(
                facility_model,
                {"code": facility_spec["code"]},
                {"site": site, **{k: facility_spec[k] for k in _FACILITY_FIELDS if k in facility_spec}},
                {"adapter": facility_spec["adapter"], "simulated": True, "enabled": True, "api_url": "", "api_token": ""},
            )
            n_facilities += 1
            for instrument_spec in facility_spec["instruments"]:
                upsert(
                    instrument_model,
                    {"code": instrument_spec["code"]},
                    {"facility": facility, **{k: instrument_spec[k] for k in _INSTRUMENT_FIELDS if k in instrument_spec}},
                    {},
                )
                n_instruments += 1
    return NetworkLoadResult(
        created=created, updated=updated, sites=n_sites, facilities=n_facilities, instruments=n_instruments
    )
