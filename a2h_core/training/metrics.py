"""Head-motion metrics: HE (paper Table 2), motion correlation, per-dimension statistics and HS* (a substitute for
the HS metric of Yi et al. 2020, arXiv 2002.10137).

Every function takes one clip's predicted and true poses [L, 6] as numpy arrays (physical units: rx, ry, rz radians
axis-angle; tx, ty, tz camera units) and works on the predictor's normalised range [-1, 1] (`normalize_poses`)
wherever dimensions are combined, so the translation's large units do not drown the rotations. `summarize` averages
over clips.

- **HE** (head-pose error): the mean L1 distance between predicted and true pose vectors, per frame and dimension,
  in normalised units (`head_pose_error`). The paper reports HE without giving its units or averaging; ours is
  stated here and is not comparable to the paper's 0.1910.
- **Correlation**: Pearson correlation over time of predicted and true poses, per dimension, averaged over the
  dimensions where the truth moves (std > `MOVING_STD`). A prediction that does not move correlates 0.
- **Statistics**: per dimension, the mean pose and the motion (the within-clip std), predicted against true.
- **HS\\***: the summary of Yi et al. available to us names HS, "a metric of head-pose similarity between generated
  and real videos" with strong correlation to human judgement, but not its formula, so HS itself is not
  implemented. HS\\* is our documented substitute with the same purpose: per dimension, the Bhattacharyya
  coefficient between Gaussians fitted to the predicted and the true poses of the clip (1: same mean and spread;
  0: disjoint), averaged over the dimensions. It judges the style (where the head rests, how much it moves), not the
  timing, which the correlation measures.
"""
from __future__ import annotations

import math

import numpy as np

from a2h_core.modules.pose_predictor import normalize_poses
from a2h_core.pose import POSE_COLUMNS

MOVING_STD = 1e-3  # normalised units: a dimension whose truth moves less than this is left out of the correlation
STD_FLOOR = 1e-3  # normalised units: spread floor of HS* (a still curve is a narrow Gaussian, not a point)


def _normalised(poses: np.ndarray) -> np.ndarray:
    return normalize_poses(np.asarray(poses, dtype=np.float32)).astype(np.float64)


def head_pose_error(predicted: np.ndarray, true: np.ndarray) -> float:
    """HE: mean |predicted - true| over frames and the six dimensions, normalised units."""
    return float(np.abs(_normalised(predicted) - _normalised(true)).mean())


def motion_correlation(predicted: np.ndarray, true: np.ndarray) -> float:
    """Mean Pearson correlation over time of predicted and true poses, over the dimensions where the truth moves
    (nan when none does); a dimension the prediction holds still counts 0."""
    p, t = _normalised(predicted), _normalised(true)
    values = []
    for d in range(p.shape[1]):
        if t[:, d].std() < MOVING_STD:
            continue
        if p[:, d].std() < 1e-9:
            values.append(0.0)
            continue
        values.append(float(np.corrcoef(p[:, d], t[:, d])[0, 1]))
    return float(np.mean(values)) if values else math.nan


def hs_substitute(predicted: np.ndarray, true: np.ndarray) -> float:
    """HS*: mean over dimensions of the Bhattacharyya coefficient of Gaussians fitted to predicted and true poses."""
    p, t = _normalised(predicted), _normalised(true)
    mu_p, mu_t = p.mean(0), t.mean(0)
    var_p, var_t = np.maximum(p.std(0), STD_FLOOR) ** 2, np.maximum(t.std(0), STD_FLOOR) ** 2
    coefficient = np.sqrt(2 * np.sqrt(var_p * var_t) / (var_p + var_t)) * np.exp(
        -((mu_p - mu_t) ** 2) / (4 * (var_p + var_t)))
    return float(coefficient.mean())


def clip_metrics(predicted: np.ndarray, true: np.ndarray) -> dict:
    """Every metric of one clip (see the module doc); `predicted` and `true` are [L, 6] in physical units."""
    predicted, true = np.asarray(predicted, np.float64), np.asarray(true, np.float64)
    if predicted.shape != true.shape or predicted.ndim != 2 or predicted.shape[1] != 6:
        raise ValueError(f"predicted {predicted.shape} and true {true.shape} must both be [L, 6]")
    return {
        "he": head_pose_error(predicted, true),
        "correlation": motion_correlation(predicted, true),
        "hs_star": hs_substitute(predicted, true),
        "mean_pred": predicted.mean(0), "mean_true": true.mean(0),
        "motion_pred": predicted.std(0), "motion_true": true.std(0),
        "he_per_dim": np.abs(predicted - true).mean(0),
    }


def summarize(per_clip: list[dict]) -> dict:
    """Averages over clips: scalars "he", "correlation", "hs_star" and per-dimension tables keyed by POSE_COLUMNS."""
    if not per_clip:
        raise ValueError("no clips to summarise")
    correlations = [m["correlation"] for m in per_clip if not math.isnan(m["correlation"])]
    summary = {
        "clips": len(per_clip),
        "frames": int(sum(m.get("frames", 0) for m in per_clip)),
        "he": float(np.mean([m["he"] for m in per_clip])),
        "correlation": float(np.mean(correlations)) if correlations else math.nan,
        "hs_star": float(np.mean([m["hs_star"] for m in per_clip])),
        "per_dim": {},
    }
    for key in ("mean_pred", "mean_true", "motion_pred", "motion_true", "he_per_dim"):
        stacked = np.mean([m[key] for m in per_clip], 0)
        for d, name in enumerate(POSE_COLUMNS):
            summary["per_dim"].setdefault(name, {})[key] = float(stacked[d])
    return summary
