"""Point-source point-lens fits, follow-up priority and cadence for microlensing events.

Pure Python (numpy, scipy; no Django). Times are in days in any one consistent system
(HJD, JD, MJD...): ``now_t`` must be given in the same system as the fitted ``t``.

Model
-----
Paczynski (1986, ApJ 304, 1). The source-lens separation in Einstein radii is ``u(t) = sqrt(u0**2 + ((t - t0) / tE)**2)``
and the magnification ``A(u) = (u**2 + 2) / (u * sqrt(u**2 + 4))``. Each data set ``d``
(telescope/filter) is fitted in flux space as ``F = fs_d * A(t) + fb_d``: the source flux
``fs_d`` and blend flux ``fb_d`` are solved by weighted linear least squares for every trial
``(t0, u0, tE)`` (variable projection) while scipy's trust-region least squares searches
``(t0, ln u0, ln tE)`` from a small grid of starts around the brightest part of the light
curve. Magnitudes are turned into fluxes with ``flux = 10**(-0.4 * (mag - 22))``
(MulensModel's convention), so chi2 values match MulensModel's for the same data. Fluxes
may be given instead (e.g. Rubin difference fluxes in nJy; the blend term absorbs the
template's flux, so ``fb`` may be negative there).

A fit is ``ok`` only when it is usable for triggering: enough points, a significant
brightening over a constant light curve, positive source flux in every data set, a blend
flux not below ``MIN_BLEND_RATIO`` times the source flux in the reference data set (the
first one listed: put the survey, which covers the baseline, first; magnitude data), and no
parameter stuck at the edge of the search box. Otherwise ``ok`` is False and ``reason``
says why; no data problem raises.

Priority and cadence
--------------------
:func:`followup_priority` scores an event in [0, 1] by the magnification still to come,
on a log scale that saturates at ``A = 100``: high-magnification events are the most
sensitive to planets near the Einstein ring (Griest & Safizadeh 1998, ApJ 500, 37), and
their peaks are short and predictable, so they are worth the most telescope time. :func:`followup_cadence` samples the light curve's local time scale
``tE * u(now)`` (the peak width ``u0 * tE`` at peak) ten times, clamped to
[15 min, 1 day].
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
from scipy.optimize import OptimizeResult, OptimizeWarning, least_squares

__all__ = [
    "HIGH_MAGNIFICATION",
    "MAX_CADENCE",
    "MIN_CADENCE",
    "MODEL_NAME",
    "MODEL_VERSION",
    "PSPLFit",
    "expected_peak_magnification",
    "fit_pspl",
    "followup_cadence",
    "followup_priority",
    "magnification",
    "pspl_magnification",
]

MODEL_NAME = "baton.pspl"
MODEL_VERSION = "1.1"

FLUX_ZERO_POINT = 22.0
"""Magnitude of unit flux when magnitudes are converted to flux (MulensModel's convention)."""

MIN_POINTS = 8
"""Fewest usable points for a fit (5 parameters for one data set, plus a margin)."""

MIN_DELTA_CHI2 = 50.0
"""Least chi2 improvement over a constant light curve for a fit to count as an event.

Calibrated on 600 simulated constant light curves (50-500 points over 30-400 days,
Gaussian errors of 0.01-0.1 mag): fitting a PSPL bump anywhere in the noise improved chi2
by 8 in the median, 17 at the 99th percentile and 23 at most. 50 keeps false triggers rare
while any real event of the MulensModel sample improves chi2 by thousands.
"""

MIN_BLEND_RATIO = -0.5
"""Lowest blend/source flux ratio accepted for magnitude data (a little negative blending
comes from crowded-field photometry; much more means the baseline is fainter than the
source, which is unphysical). Difference fluxes have fb ~ -fs by construction and are
exempt."""

MAX_REL_ERR = 0.5
"""Largest relative 1-sigma error on tE (and on t0 in units of tE, and on u0) of a fit to trigger on."""
MAX_REL_U0_ERR = 0.3
"""u0 sets the predicted peak magnification (A ~ 1/u0), so it is held tighter: before the peak u0 and tE trade off,
and an early fit with a loose u0 promises a peak many times brighter than the one that comes."""
MAX_ABS_U0_ERR = 0.02
"""A u0 error up to this is accepted whatever u0 (a high-magnification event has a small u0 known to +/- 0.01)."""
MIN_MAGNIFIED_POINTS = 3
MIN_MAGNIFICATION = 1.1
MIN_EXCESS_SIGMA = 3.0
"""A fit rests on magnified data: this many points with model A >= ``MIN_MAGNIFICATION`` whose flux stands
``MIN_EXCESS_SIGMA`` sigma above the fitted baseline."""

U0_BOUNDS = (1e-4, 3.0)
TE_BOUNDS = (0.1, 1000.0)  # days
HIGH_MAGNIFICATION = 100.0
"""Magnification at which the priority's magnification term saturates (see module doc)."""

MIN_CADENCE = timedelta(minutes=15)
MAX_CADENCE = timedelta(days=1)
SAMPLES_PER_TIMESCALE = 10.0

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class PSPLFit:
    """Result of :func:`fit_pspl`.

    ``t0`` (same time system as the input, days), ``u0`` (Einstein radii, >= 0) and ``tE``
    (days) with 1-sigma errors (scaled by sqrt(chi2/dof) when that exceeds 1); ``fs``/``fb``
    are the source and blend fluxes of the reference data set (the first label seen),
    ``fluxes`` maps every data set label to ``(fs, fb)``; ``error_scales`` maps it to the
    factor its errors were multiplied by (empty unless ``rescale_errors``). ``chi2`` and
    ``dof`` are of the PSPL fit, ``delta_chi2`` its improvement over a constant light curve
    per data set. When ``ok`` is False, ``reason`` says why and the numbers (if any) are
    diagnostics only. ``model``/``version`` record the provenance of the fit.
    """

    ok: bool
    reason: str
    t0: float | None = None
    u0: float | None = None
    tE: float | None = None
    t0_err: float | None = None
    u0_err: float | None = None
    tE_err: float | None = None
    fs: float | None = None
    fb: float | None = None
    fluxes: Mapping[str, tuple[float, float]] = field(default_factory=lambda: MappingProxyType({}))
    error_scales: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    chi2: float | None = None
    dof: int = 0
    n_points: int = 0
    delta_chi2: float | None = None
    model: str = MODEL_NAME
    version: str = MODEL_VERSION


def magnification(u: npt.ArrayLike) -> FloatArray | float:
    """Point-source point-lens magnification ``A(u) = (u^2 + 2) / (u sqrt(u^2 + 4))``.

    ``u`` is the source-lens separation in Einstein radii (its sign is ignored); ``A(0)`` is
    infinite. Returns a float for a scalar, an array otherwise.
    """
    u_arr = np.abs(np.asarray(u, dtype=float))
    u2 = u_arr * u_arr
    with np.errstate(divide="ignore"):
        result = (u2 + 2.0) / (u_arr * np.sqrt(u2 + 4.0))
    return float(result) if result.ndim == 0 else result


def pspl_magnification(t: npt.ArrayLike, *, t0: float, u0: float, tE: float) -> FloatArray | float:
    """Magnification at times ``t`` (days) of a PSPL event with peak ``t0``, impact ``u0``, timescale ``tE``."""
    tau = (np.asarray(t, dtype=float) - t0) / tE
    return magnification(np.sqrt(u0 * u0 + tau * tau))


def _linear_fluxes(
    amp: FloatArray, flux: FloatArray, weight: FloatArray, labels: npt.NDArray[np.intp], n_sets: int
) -> tuple[FloatArray, FloatArray]:
    """Per data set weighted least-squares (fs, fb) of ``flux = fs * amp + fb``."""
    s1 = np.bincount(labels, weight, n_sets)
    sa = np.bincount(labels, weight * amp, n_sets)
    saa = np.bincount(labels, weight * amp * amp, n_sets)
    sf = np.bincount(labels, weight * flux, n_sets)
    saf = np.bincount(labels, weight * amp * flux, n_sets)
    det = saa * s1 - sa * sa
    safe = np.abs(det) > 1e-12 * np.maximum(saa * s1, 1e-300)
    fs = np.where(safe, (s1 * saf - sa * sf) / np.where(safe, det, 1.0), 0.0)
    fb = np.where(safe, (saa * sf - sa * saf) / np.where(safe, det, 1.0), sf / s1)
    return fs, fb


def _failed(reason: str, n_points: int = 0) -> PSPLFit:
    return PSPLFit(ok=False, reason=reason, n_points=n_points)


def fit_pspl(
    *,
    t: npt.ArrayLike,
    mag: npt.ArrayLike | None = None,
    mag_err: npt.ArrayLike | None = None,
    flux: npt.ArrayLike | None = None,
    flux_err: npt.ArrayLike | None = None,
    dataset: Sequence[str] | npt.ArrayLike | None = None,
    rescale_errors: bool = False,
) -> PSPLFit:
    """Fit a point-source point-lens model to a light curve.

    Give ``t`` (days) with either ``mag``/``mag_err`` or ``flux``/``flux_err`` (arrays of
    the same length). ``dataset`` optionally labels each point with its telescope/filter;
    each label gets its own source and blend flux. With ``rescale_errors`` each data set's
    errors are scaled so that its chi2 per degree of freedom is 1 and the fit is redone (the
    usual practice when combining telescopes whose error bars are not on one footing); the
    factors are returned in ``error_scales``. Points with a non-finite value or a
    non-positive error are dropped. Data problems (too few points, a flat light curve, a
    fit that does not converge or hits its bounds) give ``ok=False`` with a ``reason``;
    only a caller error (missing arrays, unequal lengths) raises ``ValueError``.
    """
    times = np.asarray(t, dtype=float).ravel()
    if (mag is None) == (flux is None):
        raise ValueError("give either mag and mag_err, or flux and flux_err")
    if mag is not None:
        if mag_err is None:
            raise ValueError("mag_err is required with mag")
        values, errors = np.asarray(mag, dtype=float).ravel(), np.asarray(mag_err, dtype=float).ravel()
    else:
        if flux_err is None:
            raise ValueError("flux_err is required with flux")
        values, errors = np.asarray(flux, dtype=float).ravel(), np.asarray(flux_err, dtype=float).ravel()
    if not times.size == values.size == errors.size:
        raise ValueError(
            f"t, values and errors differ in length ({times.size}, {values.size}, {errors.size})"
        )
    labels_in = (
        np.full(times.size, "", dtype="<U1") if dataset is None else np.asarray(dataset, dtype=str).ravel()
    )
    if labels_in.size != times.size:
        raise ValueError(f"dataset has {labels_in.size} labels for {times.size} points")

    good = np.isfinite(times) & np.isfinite(values) & np.isfinite(errors) & (errors > 0)
    times, values, errors, labels_in = times[good], values[good], errors[good], labels_in[good]
    if mag is not None:
        fluxes = 10.0 ** (-0.4 * (values - FLUX_ZERO_POINT))
        sigmas = fluxes * errors * math.log(10.0) / 2.5
    else:
        fluxes, sigmas = values, errors
    names, first_seen, labels = np.unique(labels_in, return_index=True, return_inverse=True)
    order = np.argsort(first_seen)  # data sets in order of first appearance; the first is the reference
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    labels = rank[labels].astype(np.intp)
    names = names[order]
    n_sets = len(names)
    n_points = int(times.size)
    dof = n_points - 3 - 2 * n_sets
    if n_points < MIN_POINTS or dof < 1:
        return _failed(
            f"too few usable points: {n_points} (need at least {MIN_POINTS} and more than "
            f"{3 + 2 * n_sets} for {n_sets} data set(s))",
            n_points,
        )
    counts = np.bincount(labels, minlength=n_sets)
    if counts.min() < 3:
        small = int(np.argmin(counts))
        return _failed(
            f"data set {str(names[small]) or '(unlabelled)'} has {counts[small]} usable point(s); "
            "each needs at least 3 for its source and blend fluxes",
            n_points,
        )
    if np.ptp(times) <= 0:
        return _failed("all points are at the same time", n_points)

    try:
        return _fit(times, fluxes, sigmas, labels, names, dof, rescale_errors, mag is not None)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
        return _failed(f"fit failed: {exc}", n_points)


def _fit(
    times: FloatArray,
    fluxes: FloatArray,
    sigmas: FloatArray,
    labels: npt.NDArray[np.intp],
    names: npt.NDArray[np.str_],
    dof: int,
    rescale_errors: bool,
    from_magnitudes: bool,
) -> PSPLFit:
    n_sets = len(names)
    n_points = int(times.size)
    span = float(np.ptp(times))
    t_lo, t_hi = float(times.min()) - max(span, 30.0), float(times.max()) + max(span, 30.0)
    lower = np.array([t_lo, math.log(U0_BOUNDS[0]), math.log(TE_BOUNDS[0])])
    upper = np.array([t_hi, math.log(U0_BOUNDS[1]), math.log(TE_BOUNDS[1])])

    def solve(sigma: FloatArray, starts: list[tuple[float, float, float]]) -> OptimizeResult | None:
        weight = 1.0 / (sigma * sigma)

        def residuals(params: FloatArray) -> FloatArray:
            t0, log_u0, log_te = params
            u0, te = math.exp(log_u0), math.exp(log_te)
            tau = (times - t0) / te
            u = np.sqrt(u0 * u0 + tau * tau)
            amp = (u * u + 2.0) / (u * np.sqrt(u * u + 4.0))
            fs, fb = _linear_fluxes(amp, fluxes, weight, labels, n_sets)
            return (fluxes - fs[labels] * amp - fb[labels]) / sigma

        best = None
        for t0, u0, te in starts:
            x0 = np.clip(np.array([t0, math.log(u0), math.log(te)]), lower + 1e-9, upper - 1e-9)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                with np.errstate(all="ignore"):
                    result = least_squares(
                        residuals, x0, bounds=(lower, upper), x_scale=[te, 1.0, 1.0], method="trf"
                    )
            if np.isfinite(result.cost) and (best is None or result.cost < best.cost):
                best = result
        return best

    best = solve(sigmas, _starts(times, fluxes, sigmas, labels, n_sets))
    scales = np.ones(n_sets)
    if rescale_errors and best is not None:
        # Scale each data set's errors so its chi2 per degree of freedom is 1, then refit
        # from the solution (twice: the scales barely move after that).
        for _ in range(2):
            residual = best.fun
            chi2_sets = np.bincount(labels, residual * residual, n_sets)
            counts = np.bincount(labels, minlength=n_sets)
            factor = np.sqrt(chi2_sets / np.maximum(counts - 2, 1))
            factor = np.where(np.isfinite(factor) & (factor > 0), factor, 1.0)
            scales = scales * factor
            sigmas = sigmas * factor[labels]
            x = best.x
            best = solve(sigmas, [(float(x[0]), math.exp(x[1]), math.exp(x[2]))])
            if best is None:
                break
    if best is None:
        return _failed("the optimiser found no finite solution", n_points)

    weight = 1.0 / (sigmas * sigmas)
    const = np.bincount(labels, weight * fluxes, n_sets) / np.bincount(labels, weight, n_sets)
    chi2_flat = float(np.sum(weight * (fluxes - const[labels]) ** 2))  # a constant per data set
    t0, u0, te = float(best.x[0]), math.exp(best.x[1]), math.exp(best.x[2])
    chi2 = float(2.0 * best.cost)
    amp = np.asarray(pspl_magnification(times, t0=t0, u0=u0, tE=te))
    fs, fb = _linear_fluxes(amp, fluxes, weight, labels, n_sets)
    errors = _errors(best.jac, chi2, dof, u0, te)
    fit_fluxes = MappingProxyType({str(name): (float(fs[i]), float(fb[i])) for i, name in enumerate(names)})
    error_scales = MappingProxyType(
        {str(name): float(scales[i]) for i, name in enumerate(names)} if rescale_errors else {}
    )
    reason = ""
    if chi2_flat - chi2 < MIN_DELTA_CHI2:
        reason = (
            f"no significant brightening: chi2 improves by {chi2_flat - chi2:.1f} over a constant "
            f"light curve (need {MIN_DELTA_CHI2:g})"
        )
    elif np.any(fs <= 0):
        bad = str(names[int(np.argmax(fs <= 0))]) or "(unlabelled)"
        reason = f"source flux is not positive in data set {bad}: a dimming, not a magnification"
    elif from_magnitudes and fb[0] < MIN_BLEND_RATIO * fs[0]:
        # Only the reference data set: one that covers just the peak (a follow-up
        # telescope) leaves its own blend unconstrained, and that is no fault of the event.
        reason = (
            f"blend flux {fb[0]:.4g} is below {MIN_BLEND_RATIO:g} x the source flux {fs[0]:.4g} in the reference "
            f"data set {str(names[0]) or '(unlabelled)'}: the source would outshine the baseline, so the light "
            "curve is not a point-lens event"
        )
    else:
        for index, label in enumerate(("t0", "u0", "tE")):
            scale = max(abs(upper[index] - lower[index]), 1.0)
            if best.x[index] - lower[index] < 1e-4 * scale or upper[index] - best.x[index] < 1e-4 * scale:
                reason = f"{label} is at the edge of its allowed range; the data do not constrain it"
                break
    if not reason:
        reason = _not_credible(
            u0=u0, te=te, errors=errors, times=times, fluxes=fluxes, sigmas=sigmas, amp=amp,
            fs=fs[labels], fb=fb[labels],
        )
    return PSPLFit(
        ok=not reason,
        reason=reason,
        t0=t0,
        u0=u0,
        tE=te,
        t0_err=errors[0],
        u0_err=errors[1],
        tE_err=errors[2],
        fs=float(fs[0]),
        fb=float(fb[0]),
        fluxes=fit_fluxes,
        error_scales=error_scales,
        chi2=chi2,
        dof=dof,
        n_points=n_points,
        delta_chi2=chi2_flat - chi2,
    )


def _not_credible(
    *, u0: float, te: float, errors: tuple[float | None, float | None, float | None], times: FloatArray,
    fluxes: FloatArray, sigmas: FloatArray, amp: FloatArray, fs: FloatArray, fb: FloatArray,
) -> str:
    """Why a converged, significant fit is still not an event to trigger on ("" when it is).

    A bump fitted into baseline noise converges and can beat a constant light curve, but its parameters are then
    unconstrained and the magnification it predicts rests on no magnified data. So a fit must (calibrated on the
    real OGLE light curves MulensModel ships, replayed point by point; ``bench/bench_trigger.py``):

    - bound its parameters: sigma(tE) <= ``MAX_REL_ERR`` x tE, sigma(t0) <= ``MAX_REL_ERR`` x tE, and sigma(u0) <=
      max(``MAX_REL_U0_ERR`` x u0, ``MAX_ABS_U0_ERR``);
    - rest on magnified data: at least ``MIN_MAGNIFIED_POINTS`` points where the model magnifies by
      ``MIN_MAGNIFICATION`` or more and the flux stands ``MIN_EXCESS_SIGMA`` sigma above the fitted baseline.
    """
    t0_err, u0_err, te_err = errors
    if t0_err is None or u0_err is None or te_err is None:
        return "the fit's uncertainties cannot be determined: the data do not constrain it"
    if te_err > MAX_REL_ERR * te:
        return f"tE = {te:.3g} +/- {te_err:.3g} d is not constrained (need an error within {MAX_REL_ERR:.0%})"
    if t0_err > MAX_REL_ERR * te:
        return f"t0 is uncertain by {t0_err:.3g} d, more than {MAX_REL_ERR:g} x tE ({te:.3g} d)"
    if u0_err > max(MAX_REL_U0_ERR * u0, MAX_ABS_U0_ERR):
        return f"u0 = {u0:.3g} +/- {u0_err:.3g} is not constrained"
    excess = (fluxes - (fs + fb)) / sigmas
    magnified = int(np.count_nonzero((amp >= MIN_MAGNIFICATION) & (excess >= MIN_EXCESS_SIGMA)))
    if magnified < MIN_MAGNIFIED_POINTS:
        return (
            f"only {magnified} point(s) are magnified (A >= {MIN_MAGNIFICATION:g} and {MIN_EXCESS_SIGMA:g} sigma above "
            f"the baseline); need {MIN_MAGNIFIED_POINTS} on the rise before trusting the event"
        )
    return ""


def _starts(
    times: FloatArray, fluxes: FloatArray, sigmas: FloatArray, labels: npt.NDArray[np.intp], n_sets: int
) -> list[tuple[float, float, float]]:
    """Initial (t0, u0, tE) guesses from the brightest stretch of the light curve."""
    # Significance of each point above its data set's median, smoothed over three
    # consecutive points so a single outlier does not set the peak.
    medians = np.array([np.median(fluxes[labels == k]) for k in range(n_sets)])
    signal = (fluxes - medians[labels]) / sigmas
    order = np.argsort(times, kind="stable")
    t_sorted, s_sorted = times[order], signal[order]
    smooth = np.convolve(s_sorted, np.ones(3) / 3.0, mode="same") if s_sorted.size >= 3 else s_sorted
    peak = int(np.argmax(smooth))
    t_peak = float(t_sorted[peak])

    # Width of the bump: the contiguous run around the peak above half its significance.
    half = 0.5 * smooth[peak]
    left = right = peak
    while left > 0 and smooth[left - 1] > half:
        left -= 1
    while right < smooth.size - 1 and smooth[right + 1] > half:
        right += 1
    width = float(t_sorted[right] - t_sorted[left])
    span = float(np.ptp(times))
    width = min(max(width, 0.3, span / max(times.size, 1)), span)

    te_guesses = sorted({round(x, 6) for x in (width / 2.0, width, 3.0 * width, 20.0)})
    te_guesses = [min(max(x, TE_BOUNDS[0] * 2), TE_BOUNDS[1] / 2) for x in te_guesses]
    return [(t_peak, u0, te) for te in te_guesses for u0 in (0.01, 0.1, 0.5, 1.0)]


def _errors(
    jac: FloatArray, chi2: float, dof: int, u0: float, te: float
) -> tuple[float | None, float | None, float | None]:
    """1-sigma errors of (t0, u0, tE) from the Jacobian of the profiled residuals."""
    try:
        covariance = np.linalg.inv(jac.T @ jac)
    except np.linalg.LinAlgError:
        return None, None, None
    scale = max(chi2 / dof, 1.0) if dof > 0 else 1.0
    variances = np.diag(covariance) * scale
    if not np.all(np.isfinite(variances)) or np.any(variances < 0):
        return None, None, None
    sd = np.sqrt(variances)
    # The search runs in ln u0 and ln tE: sigma(x) = x * sigma(ln x).
    return float(sd[0]), float(u0 * sd[1]), float(te * sd[2])


def expected_peak_magnification(fit: PSPLFit) -> float | None:
    """Magnification at the peak, ``A(u0)``, of a usable fit; None when ``fit.ok`` is False."""
    if not fit.ok or fit.u0 is None:
        return None
    return float(magnification(fit.u0))


def _magnification_score(amp: float) -> float:
    if not amp > 1.0:
        return 0.0
    return min(math.log10(amp) / math.log10(HIGH_MAGNIFICATION), 1.0)


def followup_priority(fit: PSPLFit, *, now_t: float) -> float:
    """Follow-up priority in [0, 1] of the event at time ``now_t`` (days, the fit's time system).

    ``s(A) = min(log10 A / log10 100, 1)`` measures a magnification. After the peak the
    priority is ``s(A(now))``: only the declining tail is left. Before the peak it is
    ``max(s(A(now)), s(A(u0)) * exp(-(t0 - now) / (0.5 tE)))``: the coming peak counts,
    discounted by how far ahead it is in units of half an Einstein time. The two agree at
    ``now = t0``. So a high-magnification event near its peak scores ~1, an event far from
    its peak scores near 0, and an unusable fit (``ok`` False) scores exactly 0.
    """
    if not fit.ok or fit.t0 is None or fit.u0 is None or fit.tE is None:
        return 0.0
    amp_now = float(pspl_magnification(now_t, t0=fit.t0, u0=fit.u0, tE=fit.tE))
    score = _magnification_score(amp_now)
    if now_t < fit.t0:
        ahead = (fit.t0 - now_t) / (0.5 * fit.tE)
        score = max(score, _magnification_score(float(magnification(fit.u0))) * math.exp(-ahead))
    return min(max(score, 0.0), 1.0)


def followup_cadence(fit: PSPLFit, *, now_t: float) -> timedelta:
    """Time between follow-up observations of the event at ``now_t`` (days, the fit's time system).

    The light curve changes on the time scale ``tE * u(now)`` (``u0 * tE``, the width of
    the peak, at the peak; the time since or to the peak far from it). The cadence samples
    that ``SAMPLES_PER_TIMESCALE`` (10) times, clamped to [``MIN_CADENCE``, ``MAX_CADENCE``]
    = [15 min, 1 day]. It grows with ``|now - t0|``, ``u0`` and ``tE``: a high-magnification
    event at its peak gets 15-30 min, a long event far from its peak gets a day. An unusable
    fit gets ``MAX_CADENCE``.
    """
    if not fit.ok or fit.t0 is None or fit.u0 is None or fit.tE is None:
        return MAX_CADENCE
    tau = (now_t - fit.t0) / fit.tE
    timescale_days = fit.tE * math.sqrt(fit.u0 * fit.u0 + tau * tau)
    cadence = timedelta(days=timescale_days / SAMPLES_PER_TIMESCALE)
    return min(max(cadence, MIN_CADENCE), MAX_CADENCE)
