"""Pose boxes: the binary image per frame that tells the motion field generator where the head is.

The original draws a 3-D box for every pose with OpenCV (`cv2.projectPoints`, then `cv2.polylines` and three
`cv2.line` calls, thickness 2, value 255, on a float64 canvas). On a float64 canvas OpenCV replaces LINE_AA by
plain 8-connected drawing, and a line thicker than one pixel becomes a filled parallelogram (its four edges drawn
as 8-connected lines in 16.16 fixed point, then scan-line filled) with a radius-1 filled circle (a plus sign) at
its joints. This module reproduces that pixel set with integer tensor arithmetic, batched over poses and on any
device, without OpenCV:

- `project_box` projects the box for a batch of poses (Rodrigues rotation, pinhole camera, no distortion) in the
  same floating-point order as OpenCV, and `box_points_2d` truncates the result toward zero as `np.int32` does;
- `render_pose_boxes` rasterises the box edges in closed form: the scan-line fills become per-row spans, the
  8-connected outlines walks along their major axis, the joints plus signs; only drawn pixels are enumerated,
  so the work grows with the pixels drawn, not with the image area.

`tests/test_pose_render.py` compares the result with OpenCV 4.x pixel by pixel; `tools/bench_pose_render.py`
measures speed and agreement. The previews for people are in `a2h_core.previews`.
"""
from __future__ import annotations

import numpy as np
import torch

from a2h_core.config import IMAGE_SIZE
from a2h_core.errors import Audio2HeadError

# The original's 3-D box in head coordinates: a rear square (+-75 at depth 0) and a larger front square (+-100 at
# depth 100), each listed as a closed loop of five points (the first point repeated).
_REAR, _FRONT = 75.0, 100.0
BOX_POINTS_3D = np.array(
    [(-_REAR, -_REAR, 0.0), (-_REAR, _REAR, 0.0), (_REAR, _REAR, 0.0), (_REAR, -_REAR, 0.0), (-_REAR, -_REAR, 0.0),
     (-_FRONT, -_FRONT, 100.0), (-_FRONT, _FRONT, 100.0), (_FRONT, _FRONT, 100.0), (_FRONT, -_FRONT, 100.0),
     (-_FRONT, -_FRONT, 100.0)],
    dtype=np.float64,
)
FOCAL_LENGTH = 233.333  # the original's camera focal length in pixels, for a 256 x 256 image
PRINCIPAL_POINT = 128.0  # the original's principal point (x and y), for a 256 x 256 image
LINE_THICKNESS = 2  # the original's line width; the raster code below is specific to it
BOX_VALUE = 255.0  # pose-box pixels are 255 on 0, as the network was trained on

# Drawing order of the original: one closed polyline through the ten points (segment 9->0 closes it), then the
# three lines that connect the remaining rear and front corners.
_SEGMENTS = [(9, 0)] + [(i, i + 1) for i in range(9)] + [(1, 6), (2, 7), (3, 8)]

_SHIFT = 16  # OpenCV's fixed-point fraction bits (XY_SHIFT)
_ONE = 1 << _SHIFT
_HALF = _ONE >> 1
_INT32_MIN = -(2 ** 31)


def _as_pose_tensor(poses, device) -> torch.Tensor:
    """Poses as a float64 [N, 6] tensor on `device`, with a clear error for anything else."""
    if hasattr(poses, "values") and not isinstance(poses, (np.ndarray, torch.Tensor)):
        poses = poses.values  # a PoseCurve
    tensor = torch.as_tensor(np.asarray(poses) if not isinstance(poses, torch.Tensor) else poses)
    if tensor.ndim == 1:
        tensor = tensor[None]
    if tensor.ndim != 2 or tensor.shape[-1] != 6:
        raise Audio2HeadError(
            f"pose boxes need poses shaped [N, 6] (rx, ry, rz, tx, ty, tz), got {tuple(tensor.shape)}"
        )
    if not torch.isfinite(tensor).all():
        raise Audio2HeadError("pose boxes need finite poses; the pose curve holds NaN or Inf")
    return tensor.to(device).to(torch.float64)  # device first: MPS has no float64


def _camera(size: int) -> tuple[float, float]:
    """Focal length and principal point for a `size` x `size` image (the original's camera scaled from 256)."""
    scale = size / IMAGE_SIZE
    return FOCAL_LENGTH * scale, PRINCIPAL_POINT * scale


def project_box(poses, size: int = IMAGE_SIZE, device=None) -> torch.Tensor:
    """Project the box for a batch of poses: float64 [N, 10, 2] pixel coordinates (x, y).

    Follows `cv2.projectPoints` operation by operation (Rodrigues formula, multiplication by 1/z, then
    `x * f + c`), so that truncating the result gives the original's integer points.
    """
    poses = _as_pose_tensor(poses, device)
    focal, center = _camera(size)
    rvec, tvec = poses[:, :3], poses[:, 3:]
    theta = torch.sqrt(rvec[:, 0] * rvec[:, 0] + rvec[:, 1] * rvec[:, 1] + rvec[:, 2] * rvec[:, 2])
    tiny = theta < np.finfo(np.float64).eps
    cos, sin = torch.cos(theta), torch.sin(theta)
    inv_theta = torch.where(tiny, torch.zeros_like(theta), 1.0 / torch.where(tiny, torch.ones_like(theta), theta))
    axis = rvec * inv_theta[:, None]  # OpenCV multiplies by 1 / theta
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=torch.float64, device=poses.device)
    rotation = cos[:, None, None] * eye + (1.0 - cos)[:, None, None] * (axis[:, :, None] * axis[:, None, :])
    rotation = rotation + sin[:, None, None] * skew
    rotation = torch.where(tiny[:, None, None], eye.expand_as(rotation), rotation)

    points = torch.as_tensor(BOX_POINTS_3D, device=poses.device)
    px, py, pz = points.unbind(-1)

    def row(i):  # ((R[i,0] X + R[i,1] Y) + R[i,2] Z) + t[i], the summation order of OpenCV
        return ((rotation[:, i, 0:1] * px + rotation[:, i, 1:2] * py) + rotation[:, i, 2:3] * pz) + tvec[:, i:i + 1]

    cam_x, cam_y, cam_z = row(0), row(1), row(2)
    nonzero = cam_z != 0
    inv_z = torch.where(nonzero, 1.0 / torch.where(nonzero, cam_z, torch.ones_like(cam_z)), torch.ones_like(cam_z))
    return torch.stack([(cam_x * inv_z) * focal + center, (cam_y * inv_z) * focal + center], -1)


def box_points_2d(poses, size: int = IMAGE_SIZE, device=None) -> torch.Tensor:
    """The original's integer box points: `np.int32(projected)`, i.e. truncated toward zero; int64 [N, 10, 2].

    Values outside the int32 range (a box crossing the camera plane) become INT32_MIN, as numpy's cast does on x86.
    """
    projected = project_box(poses, size=size, device=device)
    inside = torch.isfinite(projected) & (projected > _INT32_MIN - 1.0) & (projected < 2.0 ** 31)
    return torch.where(inside, torch.trunc(torch.where(inside, projected, torch.zeros_like(projected))),
                       torch.full_like(projected, _INT32_MIN)).to(torch.int64)


def _trunc_div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """C integer division (toward zero), as OpenCV's int64 arithmetic does."""
    return torch.div(a, b, rounding_mode="trunc")


def _clip_fixed_lines(x1, y1, x2, y2, width: int, height: int):
    """OpenCV's clipLine on 16.16 fixed-point segments against [0, width<<16) x [0, height<<16).

    Returns the clipped end points and whether anything is left. Steps mirror the C code (each end is clipped in
    turn, the second end using the already clipped first one). OpenCV 4.x computes each border intersection as
    double(a) * b / c truncated toward zero; measured: integer arithmetic differs for far-away points, where the
    16.16 products overflow int64.
    """
    right, bottom = (width << _SHIFT) - 1, (height << _SHIFT) - 1

    def code(x, y):
        return (x < 0).long() + (x > right).long() * 2 + (y < 0).long() * 4 + (y > bottom).long() * 8

    def intersect(a, b, c):  # trunc(a * b / c) in double precision; c == 0 only where the result is unused
        return torch.trunc(a.double() * b.double() / torch.where(c == 0, torch.ones_like(c), c).double()).long()

    c1, c2 = code(x1, y1), code(x2, y2)
    active = ((c1 & c2) == 0) & ((c1 | c2) != 0)

    move = active & ((c1 & 12) != 0)
    edge = torch.where(c1 < 8, torch.zeros_like(y1), torch.full_like(y1, bottom))
    x1 = torch.where(move, x1 + intersect(edge - y1, x2 - x1, y2 - y1), x1)
    y1 = torch.where(move, edge, y1)
    c1 = torch.where(move, (x1 < 0).long() + (x1 > right).long() * 2, c1)

    move = active & ((c2 & 12) != 0)
    edge = torch.where(c2 < 8, torch.zeros_like(y2), torch.full_like(y2, bottom))
    x2 = torch.where(move, x2 + intersect(edge - y2, x2 - x1, y2 - y1), x2)
    y2 = torch.where(move, edge, y2)
    c2 = torch.where(move, (x2 < 0).long() + (x2 > right).long() * 2, c2)

    second = active & ((c1 & c2) == 0) & ((c1 | c2) != 0)
    move = second & (c1 != 0)
    edge = torch.where(c1 == 1, torch.zeros_like(x1), torch.full_like(x1, right))
    y1 = torch.where(move, y1 + intersect(edge - x1, y2 - y1, x2 - x1), y1)
    x1 = torch.where(move, edge, x1)
    c1 = torch.where(move, torch.zeros_like(c1), c1)
    move = second & (c2 != 0)
    edge = torch.where(c2 == 1, torch.zeros_like(x2), torch.full_like(x2, right))
    y2 = torch.where(move, y2 + intersect(edge - x2, y2 - y1, x2 - x1), y2)
    x2 = torch.where(move, edge, x2)
    c2 = torch.where(move, torch.zeros_like(c2), c2)
    return x1, y1, x2, y2, (c1 | c2) == 0


def _enumerate(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For items repeated counts[i] times: the owner i of each repetition and its position 0 .. counts[i] - 1."""
    owner = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    first = torch.cumsum(counts, 0) - counts
    return owner, torch.arange(len(owner), device=counts.device) - first[owner]


def _fixed_line_pixels(x1, y1, x2, y2, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels of OpenCV's fixed-point 8-connected line (`Line2`) for a batch of 16.16 segments [L].

    Returns (line, pixel): for every drawn pixel, the segment it belongs to and its index y * width + x. A line is
    a walk along its major axis plus its end point, which OpenCV plots separately; pixels outside are skipped.
    """
    x1, y1, x2, y2, visible = _clip_fixed_lines(x1, y1, x2, y2, width, height)
    dx, dy = x2 - x1, y2 - y1
    x_major = dx.abs() > dy.abs()
    swap = torch.where(x_major, dx < 0, dy < 0)
    x1, x2 = torch.where(swap, x2, x1), torch.where(swap, x1, x2)
    y1, y2 = torch.where(swap, y2, y1), torch.where(swap, y1, y2)
    dx, dy = x2 - x1, y2 - y1
    major, minor = torch.where(x_major, dx, dy), torch.where(x_major, dy, dx)
    # Slope of the minor axis in 16.16 per major step; (major | 1) is OpenCV's guard against zero-length lines.
    slope = _trunc_div(minor << _SHIFT, major | 1)
    start_major = (torch.where(x_major, x1, y1) + _HALF) >> _SHIFT
    start_minor = torch.where(x_major, y1, x1) + _HALF
    walk, k = _enumerate(torch.where(visible, (major >> _SHIFT) + 1, 0))
    walk_major = start_major[walk] + k
    walk_minor = (start_minor[walk] + k * slope[walk]) >> _SHIFT
    walk_x_major = x_major[walk]
    ends = torch.nonzero(visible).flatten()
    line = torch.cat([walk, ends])
    xs = torch.cat([torch.where(walk_x_major, walk_major, walk_minor), (x2[ends] + _HALF) >> _SHIFT])
    ys = torch.cat([torch.where(walk_x_major, walk_minor, walk_major), (y2[ends] + _HALF) >> _SHIFT])
    inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
    return line[inside], ys[inside] * width + xs[inside]


def _thick_segment_quads(points: torch.Tensor):
    """OpenCV's ThickLine parallelograms (thickness 2) for every segment: 16.16 vertices [N, S, 4, 2] and a mask
    of segments long enough to get one (zero-length segments only get their round caps)."""
    start = points[:, [a for a, _ in _SEGMENTS]] << _SHIFT
    end = points[:, [b for _, b in _SEGMENTS]] << _SHIFT
    dx = (start[..., 0] - end[..., 0]).double() / _ONE
    dy = (end[..., 1] - start[..., 1]).double() / _ONE
    length2 = dx * dx + dy * dy
    has_quad = length2.abs() > np.finfo(np.float64).eps
    half_width = float(LINE_THICKNESS << (_SHIFT - 1))
    ratio = half_width / torch.sqrt(torch.where(has_quad, length2, torch.ones_like(length2)))
    # cvRound rounds half to even, as torch.round does.
    offset = torch.stack([torch.round(dy * ratio), torch.round(dx * ratio)], -1).to(torch.int64)
    quads = torch.stack([start + offset, start - offset, end - offset, end + offset], -2)
    return quads, has_quad


def _fill_spans(quads: torch.Tensor, width: int, height: int):
    """Scan-line spans of OpenCV's FillConvexPoly (8-connected, 16.16 input) for a batch of quads [Q, 4, 2].

    Returns (quad, row, left, right) for every drawn span. Closed form of the C loop: each non-horizontal edge,
    from its upper to its lower vertex (rows rounded), is walked with x += dx per row, dx rounded as in C; every
    row from the top vertex's row down to the row before the bottom vertex's row is filled between the two edges
    crossing it (the C loop stops at the bottom row when it runs out of edges).
    """
    xs, ys = quads[..., 0], quads[..., 1]
    rows = (ys + _HALF) >> _SHIFT
    top, bottom = rows.min(-1).values, rows.max(-1).values
    x_lo, x_hi = (xs.min(-1).values + _HALF) >> _SHIFT, (xs.max(-1).values + _HALF) >> _SHIFT
    drawn = (x_hi >= 0) & (bottom >= 0) & (x_lo < width) & (top < height)

    nxt = [1, 2, 3, 0]
    downward = rows < rows[..., nxt]
    upper_x = torch.where(downward, xs, xs[..., nxt])
    lower_x = torch.where(downward, xs[..., nxt], xs)
    upper_r, lower_r = torch.minimum(rows, rows[..., nxt]), torch.maximum(rows, rows[..., nxt])
    spread = lower_r - upper_r
    step = _trunc_div((lower_x - upper_x) * 2 + spread, 2 * spread.clamp(min=1))

    first_row = top.clamp(min=0)
    quad, offset = _enumerate(torch.where(drawn, (torch.clamp(bottom, max=height) - first_row).clamp(min=0), 0))
    row = first_row[quad] + offset
    rel = row[:, None] - upper_r[quad]
    active = (rel >= 0) & (row[:, None] < lower_r[quad])  # exactly one edge per side of the quad
    edge_x = upper_x[quad] + step[quad] * rel
    big = torch.iinfo(torch.int64).max
    left = (torch.where(active, edge_x, big).min(-1).values + _HALF) >> _SHIFT
    right = (torch.where(active, edge_x, -big).max(-1).values + _HALF) >> _SHIFT
    keep = (right >= 0) & (left < width)
    return quad[keep], row[keep], left[keep].clamp(min=0), right[keep].clamp(max=width - 1)


def _draw_chunk(canvas: torch.Tensor, first_image: int, points: torch.Tensor, size: int) -> None:
    """Draw the boxes of `points` [n, 10, 2] into images first_image.. of the flat [images * size * size] canvas."""
    n = points.shape[0]
    device = points.device
    num_segments = len(_SEGMENTS)
    quads, has_quad = _thick_segment_quads(points)
    quad_ids = torch.nonzero(has_quad.flatten()).flatten()  # zero-length segments get only their round caps
    quads = quads.view(-1, 4, 2)[quad_ids]
    quad_base = (quad_ids // num_segments + first_image) * (size * size)  # first pixel of each quad's image

    # Quad fills: every pixel of every row span (spans are short except along nearly horizontal segments).
    quad, row, left, right = _fill_spans(quads, size, size)
    lengths = right - left + 1
    span, position = _enumerate(lengths)
    canvas[(quad_base[quad] + row * size + left)[span] + position] = BOX_VALUE

    # Quad outlines: OpenCV draws each edge of the polygon (vertex 3 -> 0, 0 -> 1, 1 -> 2, 2 -> 3) before filling.
    start, end = quads[:, [3, 0, 1, 2]], quads
    line, pixel = _fixed_line_pixels(start[..., 0].flatten(), start[..., 1].flatten(), end[..., 0].flatten(),
                                     end[..., 1].flatten(), size, size)
    canvas[quad_base[line // 4] + pixel] = BOX_VALUE

    # Round joints: OpenCV's filled circle of radius 1 is a plus sign, drawn at every box point.
    plus = torch.tensor([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], device=device)
    cx = (points[:, :, None, 0] + plus[:, 0]).flatten()
    cy = (points[:, :, None, 1] + plus[:, 1]).flatten()
    image = torch.arange(n, device=device).repeat_interleave(points.shape[1] * len(plus)) + first_image
    inside = (cx >= 0) & (cx < size) & (cy >= 0) & (cy < size)
    canvas[(image * (size * size) + cy * size + cx)[inside]] = BOX_VALUE


def render_pose_boxes(poses, size: int = IMAGE_SIZE, device=None, chunk_size: int = 256) -> torch.Tensor:
    """Pose-box images for a batch of poses, pixel for pixel as the original's OpenCV drawing.

    poses: [N, 6] (or [6]) axis-angle rotation + translation, as a tensor, array or `PoseCurve`.
    size: image side; 256 is the model's. Other sizes scale the camera (not the line width) and are for previews.
    device: where to render (default: the tensor's device, else CPU). MPS lacks float64 and renders on the CPU.
    Returns float32 [N, size, size] with values 0 and 255, the network's input convention, on `device`.
    """
    if device is None:
        device = poses.device if isinstance(poses, torch.Tensor) else "cpu"
    device = torch.device(device)
    work = torch.device("cpu") if device.type == "mps" else device
    if int(size) < 8:
        raise Audio2HeadError(f"pose boxes need an image size of at least 8 pixels, got {size}")
    size = int(size)
    points = box_points_2d(poses, size=size, device=work)
    canvas = torch.zeros(len(points) * size * size, dtype=torch.float32, device=work)
    for first in range(0, len(points), max(1, chunk_size)):
        _draw_chunk(canvas, first, points[first:first + chunk_size], size)
    return canvas.view(len(points), size, size).to(device)
