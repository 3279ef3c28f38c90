"""Interpolation through keyframes: linear, smooth (monotone cubic) and ease (pause at every key).

`web/js/pose_curve_logic.js` reimplements `interpolate_keys` for the keyframe editor; its fixtures are generated
from this module (`web/tests/make_fixtures.py`).
"""
from __future__ import annotations

import numpy as np

from a2h_core.errors import Audio2HeadError

INTERPOLATIONS = ("linear", "smooth", "ease")  # keyframe interpolation modes


def _pchip_slopes(t: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Fritsch-Carlson monotone slopes at the knots (the same choice as scipy's PchipInterpolator)."""
    h = np.diff(t)
    delta = np.diff(v) / h
    if len(t) == 2:
        return np.array([delta[0], delta[0]])
    slopes = np.zeros_like(v)
    w1, w2 = 2 * h[1:] + h[:-1], h[1:] + 2 * h[:-1]
    same_sign = delta[:-1] * delta[1:] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        harmonic = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])
    slopes[1:-1] = np.where(same_sign, harmonic, 0.0)

    def edge(h0, h1, d0, d1):
        slope = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
        if np.sign(slope) != np.sign(d0):
            return 0.0
        if np.sign(d0) != np.sign(d1) and abs(slope) > abs(3 * d0):
            return 3 * d0
        return slope

    slopes[0] = edge(h[0], h[1], delta[0], delta[1])
    slopes[-1] = edge(h[-1], h[-2], delta[-1], delta[-2])
    return slopes


def interpolate_keys(t: np.ndarray, v: np.ndarray, at: np.ndarray, mode: str) -> np.ndarray:
    """Values at times `at` through knots (t ascending, v); the first and last values are held outside.

    linear: straight segments. smooth: monotone cubic (PCHIP: no overshoot between keys). ease: each segment
    eases in and out (smoothstep 3u^2 - 2u^3), so the motion pauses at every key.
    """
    t, v, at = (np.asarray(a, dtype=np.float64) for a in (t, v, at))
    if len(t) == 1:
        return np.full_like(at, v[0])
    clamped = np.clip(at, t[0], t[-1])
    seg = np.clip(np.searchsorted(t, clamped, side="right") - 1, 0, len(t) - 2)
    h = t[seg + 1] - t[seg]
    u = (clamped - t[seg]) / h
    v0, v1 = v[seg], v[seg + 1]
    if mode == "linear":
        return v0 + (v1 - v0) * u
    if mode == "ease":
        return v0 + (v1 - v0) * (u * u * (3 - 2 * u))
    if mode == "smooth":
        d = _pchip_slopes(t, v)
        h00, h10 = 2 * u ** 3 - 3 * u ** 2 + 1, u ** 3 - 2 * u ** 2 + u
        h01, h11 = -2 * u ** 3 + 3 * u ** 2, u ** 3 - u ** 2
        return h00 * v0 + h10 * h * d[seg] + h01 * v1 + h11 * h * d[seg + 1]
    raise Audio2HeadError(f"unknown interpolation {mode!r}; use one of {', '.join(INTERPOLATIONS)}")

