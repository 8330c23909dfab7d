"""Stream-filter predicates: validation, and evaluation vectorised over a batch of alerts.

A filter version's ``predicates`` is a list of conditions that must all hold (AND)::

    [{"field": "mag", "op": "<=", "value": 19.5},
     {"field": "band", "op": "in", "value": ["g", "r"]},
     {"field": "rise_rate", "op": ">=", "value": 0.1},
     {"field": "abs_galactic_latitude", "op": ">", "value": 15},
     {"field": "score", "classifier": "ztf-rb", "class": "real", "op": ">=", "value": 0.65}]

Numeric fields (units): ``mag`` (AB), ``mag_err``, ``flux`` (nJy), ``flux_err``, ``snr``
(|flux| / flux_err), ``ra``, ``dec``, ``galactic_latitude``, ``abs_galactic_latitude``
(degrees), ``rise_rate`` (mag/day, positive when brightening, from the alert's own history in
its band), ``n_history`` (earlier points in the alert); ``score`` (a classifier's score for a
class: give ``classifier`` and ``class``). Text fields: ``band``, ``broker``. Operators:
``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=`` and, for text, ``in`` / ``not_in`` with a list.
A missing value (no magnitude, no score from that classifier, no history) fails every
condition on it, including ``!=``. An empty list matches every alert.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

NUMERIC_FIELDS = (
    "mag", "mag_err", "flux", "flux_err", "snr", "ra", "dec", "galactic_latitude", "abs_galactic_latitude",
    "rise_rate", "n_history",
)  # fmt: skip
TEXT_FIELDS = ("band", "broker")
NUMERIC_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}  # fmt: skip
TEXT_OPS = ("==", "!=", "in", "not_in")
MAX_PREDICATES = 50


class FilterInvalid(ValueError):
    """Predicates that cannot be evaluated; the message names the culprit."""


def predicates_validate(predicates: Any) -> list[dict[str, Any]]:
    """Check and normalise a predicate list (see module doc); raises FilterInvalid."""
    if not isinstance(predicates, list):
        raise FilterInvalid("predicates: must be a list of conditions")
    if len(predicates) > MAX_PREDICATES:
        raise FilterInvalid(f"predicates: at most {MAX_PREDICATES} conditions")
    clean: list[dict[str, Any]] = []
    for index, predicate in enumerate(predicates):
        where = f"predicates[{index}]"
        if not isinstance(predicate, dict):
            raise FilterInvalid(f"{where}: must be an object")
        name, op, value = predicate.get("field"), predicate.get("op"), predicate.get("value")
        allowed_keys = {"field", "op", "value"} | ({"classifier", "class"} if name == "score" else set())
        unknown = set(predicate) - allowed_keys
        if unknown:
            raise FilterInvalid(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        if name in NUMERIC_FIELDS or name == "score":
            if op not in NUMERIC_OPS:
                raise FilterInvalid(f"{where}.op: {op!r} is not one of {', '.join(NUMERIC_OPS)}")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise FilterInvalid(f"{where}.value: must be a finite number")
            item: dict[str, Any] = {"field": name, "op": op, "value": float(value)}
            if name == "score":
                for key in ("classifier", "class"):
                    text = predicate.get(key)
                    if not isinstance(text, str) or not text.strip() or len(text) > 64:
                        raise FilterInvalid(f"{where}.{key}: must be a name of at most 64 characters")
                    item[key] = text.strip()
            clean.append(item)
        elif name in TEXT_FIELDS:
            if op not in TEXT_OPS:
                raise FilterInvalid(f"{where}.op: {op!r} is not one of {', '.join(TEXT_OPS)}")
            if op in ("in", "not_in"):
                if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                    raise FilterInvalid(f"{where}.value: must be a non-empty list of strings")
                clean.append({"field": name, "op": op, "value": sorted({v.strip() for v in value})})
            else:
                if not isinstance(value, str):
                    raise FilterInvalid(f"{where}.value: must be a string")
                clean.append({"field": name, "op": op, "value": value.strip()})
        else:
            fields = ", ".join((*NUMERIC_FIELDS, *TEXT_FIELDS, "score"))
            raise FilterInvalid(f"{where}.field: {name!r} is not one of {fields}")
    return clean


@dataclass
class AlertFeatures:
    """The batch as columns: one entry per alert, NaN where a value is missing."""

    numeric: dict[str, FloatArray]
    text: dict[str, npt.NDArray[np.str_]]
    scores: dict[tuple[str, str], FloatArray] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(next(iter(self.numeric.values()))) if self.numeric else 0


def _numeric_mask(values: FloatArray, op: str, threshold: float) -> BoolArray:
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & NUMERIC_OPS[op](values, threshold)


def predicates_first_failure(predicates: Sequence[dict[str, Any]], features: AlertFeatures) -> npt.NDArray[np.int8]:
    """For each alert of ``features``, the index of the first (validated) predicate it fails, or -1
    if it passes them all. Vectorised: one numpy pass per predicate, stopping once every alert
    has failed one. Indices fit an int8 (at most :data:`MAX_PREDICATES` predicates)."""
    first = np.full(features.size, -1, dtype=np.int8)
    alive = np.ones(features.size, dtype=bool)
    missing = np.full(features.size, np.nan)
    for index, predicate in enumerate(predicates):
        name, op, value = predicate["field"], predicate["op"], predicate["value"]
        if name == "score":
            values = features.scores.get((predicate["classifier"], predicate["class"]), missing)
            ok = _numeric_mask(values, op, value)
        elif name in TEXT_FIELDS:
            column = features.text[name]
            if op == "==":
                ok = column == value
            elif op == "!=":
                ok = column != value
            else:
                inside = np.isin(column, value)
                ok = inside if op == "in" else ~inside
        else:
            ok = _numeric_mask(features.numeric[name], op, value)
        failed = alive & ~ok
        first[failed] = index
        alive &= ok
        if not alive.any():
            break
    return first


def predicates_evaluate(predicates: Sequence[dict[str, Any]], features: AlertFeatures) -> BoolArray:
    """Which alerts of ``features`` pass every (validated) predicate."""
    return predicates_first_failure(predicates, features) < 0


def predicate_text(predicate: dict[str, Any]) -> str:
    """A predicate as a person reads it: ``mag <= 19.5``, ``score(ztf-rb/real) >= 0.65``."""
    name = predicate["field"]
    if name == "score":
        name = f"score({predicate['classifier']}/{predicate['class']})"
    value = predicate["value"]
    shown = "[" + ", ".join(value) + "]" if isinstance(value, list) else (f"{value:g}" if isinstance(value, float)
                                                                        else str(value))
    return f"{name} {predicate['op']} {shown}"
