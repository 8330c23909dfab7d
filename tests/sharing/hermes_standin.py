"""Hermes' validation of ``POST api/v0/submit_message/``, for the local Hermes stand-in.

Written from reading LCOGT/hermes (``hermes/serializers.py``: ``HermesMessageSerializer`` and the
target, photometry and spectroscopy serializers under it; ``hermes/views.py``:
``SubmitHermesMessageViewSet.create``), not copied: the same rules, in plain Python, with errors
keyed as DRF keys them. What Hermes checks and this does too:

* the message: ``title``, ``topic``, ``submitter`` required and not blank; ``data`` optional;
  keys of ``data`` Hermes does not know pass through;
* targets: ``name`` required and unique in the message; ``ra`` and ``dec`` together (degrees or
  sexagesimal), or else ``orbital_elements`` (epoch, inclination 0-180, node and perihelion
  argument 0-360, eccentricity >= 0, and semimajor axis + mean anomaly or perihelion distance +
  its epoch);
* every photometry / spectroscopy row: ``target_name`` one of the targets, ``date_obs`` a date
  (JD 2400000-2600000, MJD 1000-150000, or a parseable date), a telescope or an instrument;
* photometry: ``bandpass``; a non-zero ``brightness`` or ``limiting_brightness``; units only
  ``AB mag``, ``Vega mag``, ``mJy``, ``erg / s / cm² / Å`` (null is not a unit);
* spectroscopy: ``flux`` (or ``file_info``) with as many ``wavelength`` (and ``flux_error``, when
  given) values; ``flux_units`` ``mJy`` or ``erg / s / cm² / Å``; ``wavelength_units`` one of
  ``Å``, ``nm``, ``µm``, ``Hz``, ``GHz``, ``THz``; ``flux_type`` Fλ/Flambda/Fν/Fnu.

How Hermes answers: 400 with the errors; a valid message from an account without a SCiMMA
credential gets HTTP 200 with ``{"error": ...}`` and is not published; a published one gets 200
with the message and its ``uuid``.
"""

from __future__ import annotations

import math
from typing import Any

from dateutil.parser import parse as parse_date

PHOTOMETRY_UNITS = ("AB mag", "Vega mag", "mJy", "erg / s / cm² / Å")
FLUX_UNITS = ("mJy", "erg / s / cm² / Å")
WAVELENGTH_UNITS = ("Å", "nm", "µm", "Hz", "GHz", "THz")
FLUX_TYPES = ("Fλ", "Flambda", "Fν", "Fnu")
NO_CREDENTIAL = "User account does not have an associated SCIMMA auth credential. Please logout and log back in."

Errors = dict[str, Any]


def _text(row: dict[str, Any], key: str, errors: Errors, *, required: bool = False, blank: bool = True) -> None:
    value = row.get(key)
    if value is None:
        if required:
            errors[key] = ["This field is required."] if key not in row else ["This field may not be null."]
        return
    if isinstance(value, (bool, dict, list)):
        errors[key] = ["Not a valid string."]
    elif not blank and not str(value).strip():
        errors[key] = ["This field may not be blank."]


def _number(row: dict[str, Any], key: str, errors: Errors, *, low: float | None = None, high: float | None = None,
            required: bool = False) -> float | None:
    value = row.get(key)
    if value is None:
        if required:
            errors[key] = ["This field is required."]
        return None
    try:
        number = float(value)
        if isinstance(value, bool) or not math.isfinite(number):
            raise ValueError
    except (TypeError, ValueError):
        errors[key] = ["A valid number is required."]
        return None
    if (low is not None and number < low) or (high is not None and number > high):
        errors[key] = [f"Ensure this value is within [{low}, {high}]."]
    return number


def _choice(row: dict[str, Any], key: str, choices: tuple[str, ...], errors: Errors) -> None:
    if key in row and row[key] not in choices:
        errors[key] = [f'"{row[key]}" is not a valid choice.']


def _date(row: dict[str, Any], key: str, errors: Errors, *, required: bool = False) -> None:
    value = row.get(key)
    if value is None:
        if required:
            errors[key] = ["This field is required."]
        return
    try:
        number = float(value)
    except (TypeError, ValueError):
        try:
            parse_date(str(value))
        except (ValueError, OverflowError):
            errors[key] = [f"{value} does not parse with dateutil.parser.parse."]
        return
    if not (2400000 < number < 2600000 or 1000 < number < 150000):
        errors[key] = [f"Date {number} in JD format must be within bounds of 2400000 to 2600000, and in MJD "
                       "format within bounds of 15000 to 150000."]


def _angle(row: dict[str, Any], key: str, errors: Errors) -> None:
    value = row.get(key)
    if value is None:
        return
    try:
        number = float(value)
        if not math.isfinite(number):
            errors[key] = ["Value must be finite"]
        return
    except (TypeError, ValueError):
        pass
    from astropy.coordinates import Angle

    try:
        Angle(str(value), unit="hourangle" if key == "ra" else "deg")
    except (ValueError, TypeError):
        errors[key] = ["Must be in a format astropy understands"]


def _orbital_elements(elements: Any) -> Errors:
    if not isinstance(elements, dict):
        return {"non_field_errors": ["Invalid data. Expected a dictionary."]}
    errors: Errors = {}
    _date(elements, "epoch_of_elements", errors, required=True)
    _number(elements, "orbital_inclination", errors, low=0, high=180, required=True)
    _number(elements, "longitude_of_the_ascending_node", errors, low=0, high=360, required=True)
    _number(elements, "argument_of_the_perihelion", errors, low=0, high=360, required=True)
    _number(elements, "eccentricity", errors, low=0, required=True)
    _number(elements, "mean_anomaly", errors, low=0, high=360)
    if not errors and not ((elements.get("semimajor_axis") and elements.get("mean_anomaly"))
                           or (elements.get("perihelion_distance") and elements.get("epoch_of_perihelion"))):
        errors["non_field_errors"] = ["Must set mean_anomaly/semimajor_axis or epoch_of_perihelion/perihelion_distance"]
    return errors


def _target(target: Any) -> Errors:
    if not isinstance(target, dict):
        return {"non_field_errors": ["Invalid data. Expected a dictionary."]}
    errors: Errors = {}
    _text(target, "name", errors, required=True, blank=False)
    _angle(target, "ra", errors)
    _angle(target, "dec", errors)
    if target.get("epoch") is not None:
        _date(target, "epoch", errors)
    has_ra, has_dec = target.get("ra") is not None, target.get("dec") is not None
    if has_ra != has_dec:
        errors["dec" if has_ra else "ra"] = [f"Must set {'dec if ra' if has_ra else 'ra if dec'} is set"]
    elif not has_ra:
        if target.get("orbital_elements"):
            if sub := _orbital_elements(target["orbital_elements"]):
                errors["orbital_elements"] = sub
        else:
            errors["ra"] = errors["dec"] = ["ra/dec or orbital elements are required"]
    if "aliases" in target and not (isinstance(target["aliases"], list)
                                    and all(isinstance(a, str) for a in target["aliases"])):
        errors["aliases"] = ["Expected a list of strings."]
    return errors


def _common(row: dict[str, Any], errors: Errors) -> None:
    _text(row, "target_name", errors, required=True, blank=False)
    _date(row, "date_obs", errors, required=True)
    _text(row, "telescope", errors)
    _text(row, "instrument", errors)
    if not (row.get("telescope") or row.get("instrument")):
        errors["telescope"] = errors["instrument"] = ["Must have at least one of telescope or instrument set"]


def _photometry(row: Any) -> Errors:
    if not isinstance(row, dict):
        return {"non_field_errors": ["Invalid data. Expected a dictionary."]}
    errors: Errors = {}
    _common(row, errors)
    _text(row, "bandpass", errors, required=True, blank=False)
    for key in ("brightness", "brightness_error", "limiting_brightness", "limiting_brightness_error", "exposure_time"):
        _number(row, key, errors)
    _choice(row, "brightness_unit", PHOTOMETRY_UNITS, errors)
    _choice(row, "limiting_brightness_unit", PHOTOMETRY_UNITS, errors)
    if not (row.get("brightness") or row.get("limiting_brightness")):
        errors["brightness"] = errors["limiting_brightness"] = ["brightness or limiting_brightness are required"]
    return errors


def _numbers(row: dict[str, Any], key: str, errors: Errors) -> list[Any]:
    values = row.get(key)
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        errors[key] = ["Expected a list of numbers."]
        return []
    return values


def _spectroscopy(row: Any) -> Errors:
    if not isinstance(row, dict):
        return {"non_field_errors": ["Invalid data. Expected a dictionary."]}
    errors: Errors = {}
    _common(row, errors)
    flux, wavelength = _numbers(row, "flux", errors), _numbers(row, "wavelength", errors)
    flux_error = _numbers(row, "flux_error", errors)
    _choice(row, "flux_units", FLUX_UNITS, errors)
    _choice(row, "wavelength_units", WAVELENGTH_UNITS, errors)
    _choice(row, "flux_type", FLUX_TYPES, errors)
    if errors:
        return errors
    if not flux and not row.get("file_info"):
        errors["flux"] = ["Must specify a spectroscopy file to upload or specify one or more flux values"]
    elif "flux_error" in row and len(flux_error) != len(flux):
        errors["non_field_errors"] = ["Must have same number of datapoints for flux and flux_error"]
    elif len(flux) != len(wavelength):
        errors["non_field_errors"] = ["Must have same number of datapoints for flux and wavelength"]
    return errors


def hermes_errors(message: Any) -> Errors:
    """Hermes' 400 body for ``message``, or {} when Hermes would accept it."""
    if not isinstance(message, dict):
        return {"non_field_errors": ["Invalid data. Expected a dictionary."]}
    errors: Errors = {}
    for key in ("title", "topic", "submitter"):
        _text(message, key, errors, required=True, blank=False)
    _text(message, "message_text", errors)
    _text(message, "authors", errors)
    data = message.get("data")
    if data is None:
        return errors
    if not isinstance(data, dict):
        return {**errors, "data": {"non_field_errors": ["Invalid data. Expected a dictionary."]}}
    found: Errors = {}
    names = [t.get("name") for t in data.get("targets") or [] if isinstance(t, dict)]
    for key, check in (("targets", _target), ("photometry", _photometry), ("spectroscopy", _spectroscopy)):
        rows = data.get(key)
        if rows is None:
            continue
        if not isinstance(rows, list):
            found[key] = {"non_field_errors": ['Expected a list of items but got type "dict".']}
            continue
        per_row = [check(row) for row in rows]
        if key == "targets":
            per_row = [{**e, "name": ["The target name must be unique within the submission"]}
                       if names.count(row.get("name")) > 1 else e for e, row in zip(per_row, rows, strict=True)]
        else:
            per_row = [{**e, "target_name": ["The target_name must reference a name in your target table"]}
                       if not e and row.get("target_name") not in names else e for e, row in zip(per_row, rows, strict=True)]
        if any(per_row):
            found[key] = per_row
    if found:
        errors["data"] = found
    return errors
