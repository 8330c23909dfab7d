"""Sky geometry: galactic latitude against astropy, HEALPix ancestors, separations, region cells."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from mocpy import MOC

from candidates.sky import galactic_latitude, region_cells, separation_arcsec, uniq_ancestors


def test_galactic_latitude_agrees_with_astropy() -> None:
    rng = np.random.default_rng(5)
    ra, dec = rng.uniform(0, 360, 2000), np.degrees(np.arcsin(rng.uniform(-1, 1, 2000)))
    expected = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs").galactic.b.deg
    assert np.max(np.abs(galactic_latitude(ra, dec) - expected)) < 1e-9


def test_separation_is_accurate_at_arcsec_scales() -> None:
    a = SkyCoord(10 * u.deg, -89.9 * u.deg)
    b = SkyCoord(190 * u.deg, -89.9995 * u.deg)
    assert float(separation_arcsec(10, -89.9, 190, -89.9995)) == pytest.approx(a.separation(b).arcsec, rel=1e-9)


def test_uniq_ancestors_are_the_cells_that_contain_the_point() -> None:
    probes = uniq_ancestors([45.01, 200.0], [0.01, -30.0], max_order=10)
    assert probes.shape == (2, 11)
    for order in range(11):
        uniq = int(probes[0, order])
        moc = MOC.from_json({str(order): [uniq - 4 * 4**order]})
        assert moc.contains_lonlat(45.01 * u.deg, 0.01 * u.deg)[0]
        assert not moc.contains_lonlat(200.0 * u.deg, -30.0 * u.deg)[0]


def test_cone_cells_cover_the_cone() -> None:
    cells, area, spec = region_cells("cone", {"ra": 359.9, "dec": 10.0, "radius": 0.5})
    assert spec == {"ra": 359.9, "dec": 10.0, "radius": 0.5}
    assert area == pytest.approx(np.pi * 0.5**2, rel=1e-3)
    rng = np.random.default_rng(1)
    ra = (359.9 + rng.uniform(-0.5, 0.5, 500) / np.cos(np.radians(10))) % 360
    dec = 10 + rng.uniform(-0.5, 0.5, 500)
    inside = separation_arcsec(359.9, 10.0, ra, dec) <= 1800
    probes = uniq_ancestors(ra[inside], dec[inside])
    assert np.isin(probes, cells).any(axis=1).all()  # no point of the cone is missed (across RA = 0)
