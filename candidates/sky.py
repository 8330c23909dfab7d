"""Sky geometry for ingest: HEALPix indices, separations, galactic latitude, region cells.

Vectorised over alerts (numpy arrays of ICRS degrees). HEALPix is the nested scheme of
``cdshealpix``; watch regions become MOCs (``mocpy``) whose cells are stored as ``uniq``
numbers ``4 * 4**order + pixel``, so an alert lies in a region exactly when one of its
``uniq`` ancestors (one per order) is one of the region's cells.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import astropy.units as u
import numpy as np
import numpy.typing as npt
from astropy.coordinates import Latitude, Longitude
from cdshealpix import nested
from mocpy import MOC

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

REGION_MAX_ORDER = 14
"""Deepest HEALPix order of a watch region's cells (~12.9 arcsec): a polygon or MOC is matched
at this resolution; a cone is refined by an exact distance test."""

FULL_SKY_DEG2 = 4 * math.pi * (180 / math.pi) ** 2


class RegionInvalid(ValueError):
    """A watch-region specification that cannot be indexed; the message says why."""


def hpx_index(ra: npt.ArrayLike, dec: npt.ArrayLike, order: int) -> IntArray:
    """Nested HEALPix pixel of each position (ICRS degrees) at ``order``."""
    ra_arr = np.asarray(ra, dtype=float)
    dec_arr = np.asarray(dec, dtype=float)
    if ra_arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    pix = nested.lonlat_to_healpix(Longitude(ra_arr, u.deg), Latitude(dec_arr, u.deg), order)
    return np.asarray(pix, dtype=np.int64)


def hpx_neighbourhood(pixels: IntArray, order: int) -> IntArray:
    """Each pixel and its (up to) 8 neighbours, shape (N, 9); a missing neighbour is -1."""
    if pixels.size == 0:
        return np.zeros((0, 9), dtype=np.int64)
    return np.asarray(nested.neighbours(pixels, order), dtype=np.int64)


def separation_arcsec(ra1: npt.ArrayLike, dec1: npt.ArrayLike, ra2: npt.ArrayLike, dec2: npt.ArrayLike) -> FloatArray:
    """Great-circle distance in arcsec (haversine: accurate at arcsec scales)."""
    r1, d1, r2, d2 = (np.radians(np.asarray(x, dtype=float)) for x in (ra1, dec1, ra2, dec2))
    h = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))) * 3600.0


@functools.cache
def _icrs_to_galactic() -> FloatArray:
    from astropy.coordinates import ICRS, Galactic

    unit = ICRS(ra=[0.0, 90.0, 0.0] * u.deg, dec=[0.0, 0.0, 90.0] * u.deg).transform_to(Galactic())
    columns = unit.cartesian.xyz.value  # column j: the image of ICRS axis j
    return np.asarray(columns, dtype=float)


def galactic_latitude(ra: npt.ArrayLike, dec: npt.ArrayLike) -> FloatArray:
    """Galactic latitude b (degrees) of ICRS positions (astropy's ICRS->Galactic rotation)."""
    r, d = np.radians(np.asarray(ra, dtype=float)), np.radians(np.asarray(dec, dtype=float))
    xyz = np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)])
    z_gal = _icrs_to_galactic()[2] @ xyz
    return np.degrees(np.arcsin(np.clip(z_gal, -1.0, 1.0)))


def uniq_ancestors(ra: npt.ArrayLike, dec: npt.ArrayLike, max_order: int = REGION_MAX_ORDER) -> IntArray:
    """The ``uniq`` number of the cell holding each position at every order 0..max_order, (N, max_order+1)."""
    deepest = hpx_index(ra, dec, max_order)
    orders = np.arange(max_order + 1, dtype=np.int64)
    shifts = 2 * (max_order - orders)
    pixels = deepest[:, None] >> shifts[None, :]
    return (4 * (np.int64(4) ** orders))[None, :] + pixels


def _order_for_size(size_deg: float, cells_across: float = 16.0) -> int:
    """The order whose pixels are about ``size_deg / cells_across`` wide, in [3, REGION_MAX_ORDER]."""
    wanted = max(size_deg / cells_across, 1e-9)
    order = math.ceil(math.log2(58.6 / wanted))  # order-0 pixels are ~58.6 deg wide
    return min(max(order, 3), REGION_MAX_ORDER)


def _number(spec: dict[str, Any], key: str, low: float, high: float, *, high_open: bool = False) -> float:
    value = spec.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RegionInvalid(f"{key}: must be a finite number")
    if value < low or value > high or (high_open and value == high):
        raise RegionInvalid(f"{key}: {value} is outside [{low}, {high}{')' if high_open else ']'}")
    return float(value)


def _moc_cells(moc: MOC) -> tuple[IntArray, float]:
    cells: list[int] = []
    for order_text, pixels in moc.serialize("json").items():
        order = int(order_text)
        base = 4 * 4**order
        cells.extend(base + int(pixel) for pixel in pixels)
    if not cells:
        raise RegionInvalid("the region is empty")
    return np.asarray(sorted(cells), dtype=np.int64), float(moc.sky_fraction) * FULL_SKY_DEG2


def region_cells(kind: str, spec: Any) -> tuple[IntArray, float, dict[str, Any]]:
    """Index a region: ``(uniq cells, area in deg², normalised spec)``; raises RegionInvalid.

    * ``cone``: ``{"ra", "dec", "radius"}`` in degrees (radius in (0, 90]); cells cover the
      cone at about 1/16 of its radius, and matching refines them by distance;
    * ``polygon``: ``{"vertices": [[ra, dec], ...]}`` (3 to 1000 vertices, great-circle edges),
      matched at the cells' resolution (finer for smaller polygons, at most order 14);
    * ``moc``: ``{"moc": "<ASCII MOC, e.g. '5/12-15 6/80'>"}`` or ``{"moc": {"order": [pixels]}}``
      (JSON MOC, e.g. a sky map's credible region made with mocpy), degraded to order 14.
    """
    if not isinstance(spec, dict):
        raise RegionInvalid("spec: must be an object")
    if kind == "cone":
        unknown = set(spec) - {"ra", "dec", "radius"}
        if unknown:
            raise RegionInvalid(f"spec: unknown field(s) {', '.join(sorted(unknown))}")
        ra = _number(spec, "ra", 0.0, 360.0, high_open=True)
        dec = _number(spec, "dec", -90.0, 90.0)
        radius = _number(spec, "radius", 0.0, 90.0)
        if radius <= 0:
            raise RegionInvalid("radius: must be positive")
        order = _order_for_size(radius)
        moc = MOC.from_cone(Longitude(ra, u.deg), Latitude(dec, u.deg), radius=radius * u.deg, max_depth=order)
        cells, _ = _moc_cells(moc)
        return cells, math.degrees(1) ** 2 * 2 * math.pi * (1 - math.cos(math.radians(radius))), {
            "ra": ra, "dec": dec, "radius": radius
        }
    if kind == "polygon":
        unknown = set(spec) - {"vertices"}
        if unknown:
            raise RegionInvalid(f"spec: unknown field(s) {', '.join(sorted(unknown))}")
        vertices = spec.get("vertices")
        if not isinstance(vertices, list) or not 3 <= len(vertices) <= 1000:
            raise RegionInvalid("vertices: must be a list of 3 to 1000 [ra, dec] pairs")
        ras, decs = [], []
        for index, vertex in enumerate(vertices):
            if not isinstance(vertex, list) or len(vertex) != 2:
                raise RegionInvalid(f"vertices[{index}]: must be [ra, dec]")
            ras.append(_number({"ra": vertex[0]}, "ra", 0.0, 360.0, high_open=True))
            decs.append(_number({"dec": vertex[1]}, "dec", -90.0, 90.0))
        ra_arr, dec_arr = np.asarray(ras), np.asarray(decs)
        extent = float(np.max(separation_arcsec(ra_arr[0], dec_arr[0], ra_arr, dec_arr))) / 3600.0
        order = _order_for_size(max(extent, 1e-4), cells_across=64.0)
        try:
            moc = MOC.from_polygon(Longitude(ra_arr, u.deg), Latitude(dec_arr, u.deg), max_depth=order)
        except Exception as exc:  # mocpy raises ValueError/ panics on degenerate polygons
            raise RegionInvalid(f"vertices: not a usable polygon ({exc})") from None
        cells, area = _moc_cells(moc)
        return cells, area, {"vertices": [[r, d] for r, d in zip(ras, decs, strict=True)]}
    if kind == "moc":
        unknown = set(spec) - {"moc"}
        if unknown:
            raise RegionInvalid(f"spec: unknown field(s) {', '.join(sorted(unknown))}")
        text = spec.get("moc")
        try:
            if isinstance(text, str) and text.strip():
                moc = MOC.from_str(text.strip())
            elif isinstance(text, dict) and text:
                if not all(str(k).isdigit() and 0 <= int(k) <= 29 for k in text):
                    raise RegionInvalid("moc: JSON keys must be orders 0..29")
                moc = MOC.from_json({str(k): [int(p) for p in v] for k, v in text.items()})
            else:
                raise RegionInvalid("moc: must be an ASCII MOC string or a JSON MOC object")
        except RegionInvalid:
            raise
        except Exception as exc:
            raise RegionInvalid(f"moc: cannot be read ({exc})") from None
        if moc.max_order > REGION_MAX_ORDER:
            moc = moc.degrade_to_order(REGION_MAX_ORDER)
        cells, area = _moc_cells(moc)
        return cells, area, {"moc": moc.to_string()}
    raise RegionInvalid(f"kind: {kind!r} is not one of cone, polygon, moc")
