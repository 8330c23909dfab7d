"""When the microlensing trigger fires on real light curves, and whether it fires on baseline noise.

Each of MulensModel's single-survey OGLE light curves is replayed point by point (a fit every third point, as
alerts would arrive); the first usable fit is where the trigger would fire. Reported relative to the fit to all
the data (t0, tE), with the parameters the trigger would have acted on, for Baton's PSPL model with its
credibility checks (1.1) and, as the named baseline in the same run, without them (1.0: significant, converged,
positive source flux). Then every baseline-only stretch (t < t0 - 3 tE) is replayed the same way: each usable fit
there is a false trigger.

    .venv/bin/python bench/bench_trigger.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import MulensModel
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from candidates import microlensing  # noqa: E402

PHOTOMETRY = Path(MulensModel.__file__).resolve().parent / "data" / "photometry_files"
EVENTS = {
    "OGLE-2008-BLG-092": "OB08092/phot_ob08092_O4.dat",
    "OGLE-2005-BLG-086": "OB05086/starBLG234.6.I.218982.dat",
    "OGLE-2003-BLG-235": "OB03235/OB03235_OGLE.tbl.txt",
    "OGLE-2014-BLG-0939": "OB140939/ob140939_OGLE.dat",
}


def replay(data: np.ndarray, *, credible: bool) -> tuple[int | None, microlensing.PSPLFit | None, int, int]:
    """(index of the first usable fit, that fit, fits made, usable fits) over prefixes of every third point."""
    original = microlensing._not_credible
    if not credible:
        microlensing._not_credible = lambda **_: ""  # type: ignore[assignment]  # the 1.0 decision, for comparison
    try:
        first, first_fit, fits, usable = None, None, 0, 0
        for n in range(10, len(data) + 1, 3):
            fit = microlensing.fit_pspl(t=data[:n, 0], mag=data[:n, 1], mag_err=data[:n, 2])
            fits += 1
            usable += fit.ok
            if fit.ok and first is None:
                first, first_fit = n - 1, fit
        return first, first_fit, fits, usable
    finally:
        microlensing._not_credible = original


def main() -> None:
    print("First firing, relative to the all-data fit (t - t0) / tE, and the fit acted on")
    false_1, false_2, fits_base = 0, 0, 0
    for name, path in EVENTS.items():
        data = np.loadtxt(PHOTOMETRY / path, comments=["\\", "|", "#"], usecols=(0, 1, 2))
        data = data[np.argsort(data[:, 0])]
        ref = microlensing.fit_pspl(t=data[:, 0], mag=data[:, 1], mag_err=data[:, 2])
        print(f"{name}: all data t0 = {ref.t0:.2f}, u0 = {ref.u0:.3f}, tE = {ref.tE:.2f} d ({len(data)} points)")
        for label, credible in (("1.0 (baseline)", False), ("1.1", True)):
            index, fit, _, _ = replay(data, credible=credible)
            if index is None or fit is None:
                print(f"  {label:15s} never fires")
                continue
            rel = (data[index, 0] - ref.t0) / ref.tE
            print(f"  {label:15s} fires at {rel:+6.2f} tE: t0 {fit.t0 - ref.t0:+8.1f} d (+/- {fit.t0_err:.3g}), "
                  f"u0 {fit.u0:.3f} +/- {fit.u0_err:.3g}, tE {fit.tE:.1f} +/- {fit.tE_err:.3g} d")
        base = data[data[:, 0] < ref.t0 - 3 * ref.tE]
        _, _, fits, usable_old = replay(base, credible=False)
        _, _, _, usable_new = replay(base, credible=True)
        fits_base += fits
        false_1 += usable_old
        false_2 += usable_new
    print(f"Baseline-only stretches: {fits_base} replayed fits; false triggers 1.0 (baseline): {false_1}, 1.1: {false_2}")


if __name__ == "__main__":
    main()
