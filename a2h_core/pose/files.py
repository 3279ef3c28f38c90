"""Pose-curve files: our JSON and CSV, keyframe JSON, and OpenFace 2.0 CSV.

- JSON::

    {"format": "audio2head-pose-curve", "version": 1, "fps": 25.0,
     "columns": ["rx", "ry", "rz", "tx", "ty", "tz"],      # or ["yaw", "pitch", "roll", "x", "y", "z"] (degrees)
     "poses": [[rx, ry, rz, tx, ty, tz], ...]}             # one row per pose, in that column order

  A JSON file holding ``"keyframes"`` instead of ``"poses"`` is a keyframe file (see `keyframes`).
- CSV: an optional first line ``# audio2head pose curve, fps=25``, then a header naming the six columns of either
  set (any order, an optional ``frame`` column that must count 0, 1, 2, ...), one row per pose.
- OpenFace 2.0 CSV (``frame, face_id, timestamp, confidence, success, ..., pose_Tx .. pose_Rz, ...``): detected by
  its header, see `read_openface_csv`.
"""
from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import numpy as np

from a2h_core.config import FPS, MAX_POSE_FPS, MIN_POSE_FPS
from a2h_core.errors import A2HWarning, Audio2HeadError
from a2h_core.paths import atomic_output, checked_output_file
from a2h_core.pose.curve import POSE_COLUMNS, YPR_COLUMNS, PoseCurve
from a2h_core.pose.keyframes import curve_from_keyframes
from a2h_core.pose.rotations import matrix_to_rotvec, ypr_to_matrix
from a2h_core.pose.values import validated_poses

FILE_FORMAT = "audio2head-pose-curve"  # the "format" field of pose-curve JSON files
FILE_VERSION = 1  # the "version" field of pose-curve JSON files

# Video frame rates an OpenFace file's millisecond timestamps are snapped to when within 1 %.
_COMMON_FPS = (12.0, 15.0, 23.976, 24.0, 25.0, 29.97, 30.0, 48.0, 50.0, 59.94, 60.0)
_OPENFACE_COLUMNS = ("pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz")


def _read_text(path) -> str:
    path = Path(path)
    if path.is_dir():
        raise Audio2HeadError(f"pose-curve file {str(path)!r} is a folder: give the .json or .csv file in it")
    if not path.is_file():
        raise Audio2HeadError(f"pose-curve file {str(path)!r} does not exist")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise Audio2HeadError(f"pose-curve file {str(path)!r} is not UTF-8 text: give a .json or .csv curve") \
            from None
    except OSError as exc:
        raise Audio2HeadError(f"cannot read pose-curve file {str(path)!r}: {exc.strerror or type(exc).__name__}") \
            from None


def load_pose_curve(path, fps: float | None = FPS) -> PoseCurve:
    """Read a pose curve: our JSON or CSV, a keyframe JSON, or an OpenFace 2.0 CSV (detected by content).

    fps: resample to this pose rate (default 25, the model's); None keeps the file's rate.
    """
    try:
        return _load_pose_curve(path, fps)
    except Audio2HeadError as error:  # every message names the file it is about
        if str(error).startswith(str(path)) or str(path) in str(error).split(":")[0]:
            raise
        raise Audio2HeadError(f"{path}: {error}") from None


def _load_pose_curve(path, fps: float | None) -> PoseCurve:
    text = _read_text(path)
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise Audio2HeadError(f"{path}: not valid JSON ({exc})") from None
        curve = curve_from_dict(document)
    elif suffix == ".csv":
        first = next((line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")), "")
        if "pose_Rx" in first:
            curve = read_openface_csv(path, check_range=False)
        else:
            curve = _read_curve_csv(path, text)
    else:
        raise Audio2HeadError(f"{path}: pose curves are read from .json or .csv files")
    if fps is not None and curve.fps != fps:
        curve = curve.resampled(fps)
    curve.warn_if_out_of_range(str(path))
    return curve



def curve_to_dict(curve: PoseCurve, columns: str = "axis_angle") -> dict:
    """The JSON document of the curve; columns "axis_angle" (rx..tz) or "ypr" (yaw..z, degrees)."""
    names, data = _columns(curve, columns)
    return {"format": FILE_FORMAT, "version": FILE_VERSION, "fps": curve.fps, "columns": list(names),
            "poses": data.tolist()}

def curve_from_dict(document) -> PoseCurve:
    """A curve from a JSON document: a pose-curve document, a keyframe document, or a bare [[6 numbers], ...]."""
    if isinstance(document, list):
        return PoseCurve(validated_poses(document))
    if not isinstance(document, dict):
        raise Audio2HeadError("a pose-curve JSON must be an object with 'poses' (or 'keyframes') or a list of "
                              "poses")
    if "keyframes" in document and "poses" not in document:
        return curve_from_keyframes(document, check_range=False)
    if "poses" not in document:
        raise Audio2HeadError("a pose-curve JSON needs a 'poses' list (or 'keyframes'); see the schema in "
                              "a2h_core/pose/files.py")
    fmt, version = document.get("format", FILE_FORMAT), document.get("version", FILE_VERSION)
    if fmt != FILE_FORMAT or isinstance(version, bool) or not isinstance(version, int) or version > FILE_VERSION:
        raise Audio2HeadError(f"unsupported pose-curve file (its format or version is not {FILE_FORMAT!r} version "
                              f"1 .. {FILE_VERSION}); this version reads {FILE_FORMAT!r} up to version {FILE_VERSION}")
    names = document.get("columns", POSE_COLUMNS)
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
        raise Audio2HeadError(f"a pose-curve JSON's 'columns' must be a list of six names: {', '.join(POSE_COLUMNS)} "
                              f"or {', '.join(YPR_COLUMNS)}")
    names = tuple(names)
    data = validated_poses(document["poses"])
    return _from_columns(names, data, document.get("fps", FPS))

def save_pose_curve(curve: PoseCurve, path, columns: str = "axis_angle") -> Path:
    """Write .json or .csv (by extension); columns "axis_angle" (default, exact) or "ypr" (degrees)."""
    if not isinstance(curve, PoseCurve):
        raise Audio2HeadError(f"curve must be a PoseCurve, got a {type(curve).__name__}")
    path = checked_output_file(path, "pose-curve file", suffixes=(".json", ".csv"))
    if path.suffix.lower() == ".json":
        text = json.dumps(curve_to_dict(curve, columns), indent=1) + "\n"
    else:
        names, data = _columns(curve, columns)
        lines = [f"# audio2head pose curve, fps={curve.fps:g}", ",".join(("frame", *names))]
        lines += [",".join([str(i)] + [repr(float(v)) for v in row]) for i, row in enumerate(data)]
        text = "\n".join(lines) + "\n"
    with atomic_output(path, "pose-curve file") as temp:
        temp.write_text(text, encoding="utf-8")
    return path

def _columns(curve: PoseCurve, columns: str) -> tuple[tuple[str, ...], np.ndarray]:
    if columns == "axis_angle":
        return POSE_COLUMNS, curve.values
    if columns == "ypr":
        return YPR_COLUMNS, curve.to_ypr()
    raise Audio2HeadError(f"columns must be 'axis_angle' or 'ypr', got {columns!r}")

def _number_table(path, rows: list[list[str]], first_line: int) -> np.ndarray:
    """The CSV rows as float64; a cell that is not a number is named by its line and column, never quoted."""
    table = []
    for line, row in enumerate(rows, start=first_line):
        values = []
        for column, cell in enumerate(row, start=1):
            try:
                values.append(float(cell))
            except ValueError:
                raise Audio2HeadError(f"{path}: data row {line}, column {column} is not a number") from None
        table.append(values)
    if len({len(row) for row in table}) > 1:
        raise Audio2HeadError(f"{path}: the rows do not all have the same number of values")
    return np.array(table, dtype=np.float64)


def _from_columns(names, data: np.ndarray, fps) -> PoseCurve:
    names = tuple(str(name).strip() for name in names)
    for wanted in (POSE_COLUMNS, YPR_COLUMNS):
        if sorted(names) == sorted(wanted):
            ordered = data[:, [names.index(name) for name in wanted]]
            return PoseCurve(ordered, fps) if wanted is POSE_COLUMNS else PoseCurve.from_ypr(ordered, fps)
    # The header's own text is not quoted (file contents never go into a message): say what is missing instead.
    closest = min((POSE_COLUMNS, YPR_COLUMNS), key=lambda wanted: len(set(wanted) - set(names)))
    missing = [name for name in closest if name not in names]
    detail = f"missing {', '.join(missing)}" if missing else f"{len(names)} columns where 6 (or frame + 6) are expected"
    raise Audio2HeadError(f"pose columns must be {', '.join(POSE_COLUMNS)} or {', '.join(YPR_COLUMNS)} ({detail})")

def _read_curve_csv(path, text: str) -> PoseCurve:
    lines = text.splitlines()
    fps = float(FPS)
    comments = [line for line in lines if line.lstrip().startswith("#")]
    for line in comments:
        if "fps=" in line:
            try:
                fps = float(line.split("fps=", 1)[1].split(",")[0].split()[0])
            except (ValueError, IndexError):
                raise Audio2HeadError(f"{path}: the comment line with fps= does not give a number after it") \
                    from None
    body = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not body:
        raise Audio2HeadError(f"{path}: the CSV holds no header and no poses")
    reader = csv.reader(body, skipinitialspace=True)
    header = [name.strip() for name in next(reader)]
    table = _number_table(path, list(reader), first_line=1)
    if table.size == 0:
        raise Audio2HeadError(f"{path}: the CSV has a header but no poses")
    if table.shape[1] != len(header):
        raise Audio2HeadError(f"{path}: rows have {table.shape[1]} values but the header has {len(header)}")
    if "frame" in header:
        frames = table[:, header.index("frame")]
        if not np.array_equal(frames, np.arange(len(frames))):
            raise Audio2HeadError(f"{path}: the frame column must count 0, 1, 2, ... without gaps; for sparse "
                                  "poses write a keyframe JSON instead")
        keep = [i for i, name in enumerate(header) if name != "frame"]
        header, table = [header[i] for i in keep], table[:, keep]
    return _from_columns(header, validated_poses(table, f"{path}"), fps)



def read_openface_csv(path, face_id: int | None = None, euler_as_axis_angle: bool = False,
                      check_range: bool = True) -> PoseCurve:
    """Head poses from an OpenFace 2.0 FeatureExtraction CSV (``pose_Tx .. pose_Rz``), the tool the paper used
    for its ground truth.

    OpenFace's ``pose_Rx, pose_Ry, pose_Rz`` are Euler angles (R = Rx @ Ry @ Rz: pitch, yaw, roll, the
    convention of this module); they are converted to axis-angle. The authors' own conversion is not public:
    ``euler_as_axis_angle=True`` takes the three angles as the axis-angle vector unchanged instead (the two
    agree to second order for small angles). Translations (millimetres) are taken as they are. The fps comes
    from the timestamps; frames where tracking failed (success 0) are interpolated from their neighbours.
    face_id: which face to use when the file tracks several (default: the one with the most frames).
    check_range: warn when the curve leaves the training range.
    """
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise Audio2HeadError(f"{path}: the OpenFace CSV is empty") from None
    missing = [name for name in _OPENFACE_COLUMNS if name not in header]
    if missing:
        raise Audio2HeadError(f"{path}: not an OpenFace 2.0 head-pose CSV, columns {missing} are missing "
                              "(run FeatureExtraction with -pose)")
    rows = [row for row in reader if row and any(cell.strip() for cell in row)]
    if not rows:
        raise Audio2HeadError(f"{path}: the OpenFace CSV has a header but no frames")
    table = _number_table(path, rows, first_line=1)
    if table.shape[1] != len(header):
        raise Audio2HeadError(f"{path}: rows have {table.shape[1]} values but the header has {len(header)}")
    col = {name: i for i, name in enumerate(header)}
    if "face_id" in col:
        ids, counts = np.unique(table[:, col["face_id"]], return_counts=True)
        chosen = ids[np.argmax(counts)] if face_id is None else float(face_id)
        if chosen not in ids:
            raise Audio2HeadError(f"{path}: no face_id {face_id}; the file has {ids.astype(int).tolist()}")
        table = table[table[:, col["face_id"]] == chosen]
    if "frame" in col:
        table = table[np.argsort(table[:, col["frame"]], kind="stable")]
    fps = float(FPS)
    if "timestamp" in col and len(table) > 1:
        # Frames over seconds across the whole file: OpenFace rounds timestamps to milliseconds.
        seconds = table[-1, col["timestamp"]] - table[0, col["timestamp"]]
        frames = table[-1, col["frame"]] - table[0, col["frame"]] if "frame" in col else len(table) - 1
        if seconds > 0 and frames > 0:
            fps = float(frames / seconds)
            if not MIN_POSE_FPS <= fps <= MAX_POSE_FPS:
                raise Audio2HeadError(
                    f"{path}: the timestamps give {fps:.6g} fps ({frames:g} frames in {seconds:.6g} s); OpenFace "
                    f"files are read at {MIN_POSE_FPS:g} .. {MAX_POSE_FPS:g} fps: check the timestamp column (seconds)")
            nearest = min(_COMMON_FPS, key=lambda rate: abs(rate - fps))
            fps = nearest if abs(nearest - fps) < 0.01 * nearest else round(fps, 3)
    euler = table[:, [col["pose_Rx"], col["pose_Ry"], col["pose_Rz"]]]
    translation = table[:, [col["pose_Tx"], col["pose_Ty"], col["pose_Tz"]]]
    if euler_as_axis_angle:
        rotation = euler
    else:  # OpenFace (Rx, Ry, Rz) = (pitch, yaw, roll)
        rotation = matrix_to_rotvec(ypr_to_matrix(np.degrees(euler[:, [1, 0, 2]])))
    values = np.concatenate([rotation, translation], 1)
    if "success" in col:
        ok = table[:, col["success"]] > 0
        if not ok.any():
            raise Audio2HeadError(f"{path}: OpenFace found no face in any frame (success is 0 everywhere)")
        if not ok.all():
            warnings.warn(f"{path}: OpenFace lost the face on {int((~ok).sum())} of {len(ok)} frames; their "
                          "poses are interpolated from the neighbouring frames", A2HWarning, stacklevel=2)
            index = np.arange(len(values))
            values = np.stack([np.interp(index, index[ok], values[ok, c]) for c in range(6)], 1)
    result = PoseCurve(values, fps)
    if check_range:
        result.warn_if_out_of_range(str(path))
    return result

