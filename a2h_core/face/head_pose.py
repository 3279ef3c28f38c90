"""Head pose from five face landmarks: a generic 3-D face template and a perspective-n-point solve in numpy.

Coordinates are the model's own (see `a2h_core.pose.curve`): the camera looks along +z, x to the right of the
image, y down; a head point X goes to ``R(r) X + t``; the camera is the original's pose-box camera (focal length
233.333 px, principal point 128, on the 256x256 network input). With the identity rotation the face looks at the
camera (its nose points to -z), so yaw > 0 turns the face toward the image's left, pitch > 0 tilts it down and
roll > 0 tilts it clockwise on screen, as `a2h_core.pose.rotations` documents.

`FACE_TEMPLATE` holds average adult landmark positions in millimetres (eye centres 64 mm apart, eye-to-mouth
74 mm as the demo images' 1.15 ratio gives, nose tip 23 mm in front of the eyes), about a head centre 85 mm behind
the eyes. The solve (`solve_head_pose`) minimises the reprojection error of the five points with damped
Gauss-Newton (Levenberg-Marquardt) steps, all frames at once, the mouth corners weighted down
(`LANDMARK_WEIGHTS`: they move with speech and smiles); the start is the roll of the eye line and the
distance the eye spacing implies. Fitted translations are in millimetres; `TRANSLATION_UNITS_PER_MM` turns them
into the model's units (calibrated so that the demo images' median face lands at the middle of the training
depth range; `tools/calibrate_framing.py` prints both calibrations).
"""
from __future__ import annotations

import numpy as np

from a2h_core.pose.render import FOCAL_LENGTH, PRINCIPAL_POINT
from a2h_core.pose.rotations import rotvec_to_matrix, ypr_to_matrix

# Five landmarks in the detectors' order (eye on the image's left, eye on the right, nose tip, mouth corner left,
# right) for a face looking at the camera, in mm about the head's centre; x right, y down, z away from the camera.
_TEMPLATE_MM = np.array([
    [-32.0, -22.0, -85.0],
    [32.0, -22.0, -85.0],
    [0.0, 18.0, -108.0],
    [-25.0, 52.0, -88.0],
    [25.0, 52.0, -88.0],
], dtype=np.float64)
# The template's own tilt (degrees of pitch), calibrated so that the demo images' median fitted pitch is 0: what
# the model saw as "frontal" is frontal here too.
TEMPLATE_PITCH = -10.2
FACE_TEMPLATE = _TEMPLATE_MM @ ypr_to_matrix(np.array([0.0, TEMPLATE_PITCH, 0.0])).T
# How much each landmark counts in the fit. The mouth corners move with speech and smiles (a smile alone would
# read as a 25 degree nod), so they only break the tie between the two mirror-image pitch solutions.
LANDMARK_WEIGHTS = np.array([1.0, 1.0, 1.0, 0.03, 0.03])
TRANSLATION_UNITS_PER_MM = 0.813  # model translation units per template millimetre (calibrated on the demo images)


def project(poses: np.ndarray, points: np.ndarray = FACE_TEMPLATE, focal: float = FOCAL_LENGTH,
            centre: float = PRINCIPAL_POINT) -> np.ndarray:
    """Pixel positions [N, P, 2] of template points [P, 3] under poses [N, 6] (rotvec, translation in mm)."""
    poses = np.atleast_2d(np.asarray(poses, dtype=np.float64))
    camera = np.einsum("nij,pj->npi", rotvec_to_matrix(poses[:, :3]), points) + poses[:, None, 3:]
    z = np.where(np.abs(camera[..., 2:]) < 1e-6, 1e-6, camera[..., 2:])
    return camera[..., :2] / z * focal + centre


def initial_poses(landmarks: np.ndarray, focal: float = FOCAL_LENGTH, centre: float = PRINCIPAL_POINT) -> np.ndarray:
    """A start for the solve [N, 6]: the eye line's roll, no yaw or pitch, depth from the eye spacing."""
    marks = np.asarray(landmarks, dtype=np.float64)
    eyes = marks[:, 1] - marks[:, 0]
    roll = np.arctan2(eyes[:, 1], eyes[:, 0])
    spacing = np.maximum(np.hypot(eyes[:, 0], eyes[:, 1]), 1e-3)
    depth = focal * (FACE_TEMPLATE[1, 0] - FACE_TEMPLATE[0, 0]) / spacing - FACE_TEMPLATE[:, 2].mean()
    mid = marks.mean(1)
    poses = np.zeros((len(marks), 6))
    poses[:, 2] = roll
    poses[:, 5] = depth
    poses[:, 3] = (mid[:, 0] - centre) / focal * depth
    poses[:, 4] = (mid[:, 1] - centre) / focal * depth
    return poses


def solve_head_pose(landmarks: np.ndarray, focal: float = FOCAL_LENGTH, centre: float = PRINCIPAL_POINT,
                    iterations: int = 40, start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fit poses to landmarks [N, 5, 2] (pixels of the 256x256 model camera).

    Returns poses [N, 6] (rotvec radians, translation in template mm) and the RMS reprojection error per frame [N]
    in pixels. All frames are solved together (each on its own), vectorised over N.
    """
    marks = np.asarray(landmarks, dtype=np.float64)
    poses = initial_poses(marks, focal, centre) if start is None else np.array(start, dtype=np.float64)
    damping = np.full(len(marks), 1e-3)
    steps = np.array([1e-6] * 3 + [1e-4] * 3)

    weights = np.repeat(np.sqrt(LANDMARK_WEIGHTS), 2)

    def residual(p):
        return (project(p, FACE_TEMPLATE, focal, centre) - marks).reshape(len(marks), -1) * weights

    error = residual(poses)
    cost = (error ** 2).sum(1)
    for _ in range(iterations):
        jacobian = np.stack([(residual(poses + steps[k] * np.eye(6)[k]) - error) / steps[k] for k in range(6)], -1)
        normal = np.einsum("nri,nrj->nij", jacobian, jacobian)
        gradient = np.einsum("nri,nr->ni", jacobian, error)
        diagonal = np.einsum("nii->ni", normal)
        system = normal + (damping[:, None] * (diagonal + 1e-9))[:, :, None] * np.eye(6)
        delta = -np.linalg.solve(system, gradient[..., None])[..., 0]
        candidate = poses + delta
        candidate_error = residual(candidate)
        candidate_cost = (candidate_error ** 2).sum(1)
        better = candidate_cost < cost
        poses = np.where(better[:, None], candidate, poses)
        error = np.where(better[:, None], candidate_error, error)
        cost = np.where(better, candidate_cost, cost)
        damping = np.clip(np.where(better, damping / 3, damping * 4), 1e-9, 1e9)
    return poses, np.sqrt(cost / LANDMARK_WEIGHTS.sum())


def to_model_units(poses_mm: np.ndarray) -> np.ndarray:
    """Fitted poses with translations in template mm -> the model's pose units (rotation unchanged)."""
    out = np.array(poses_mm, dtype=np.float64)
    out[:, 3:] *= TRANSLATION_UNITS_PER_MM
    return out
