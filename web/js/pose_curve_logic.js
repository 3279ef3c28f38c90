// Pure logic of the pose-curve editor: keyframe parsing and serialisation, interpolation, plot geometry and
// hit-testing. No DOM and no ComfyUI imports, so node's test runner can import it (web/tests/*.test.mjs).
//
// The keyframe JSON is the schema of a2h_core/pose/keyframes.py `curve_from_keyframes` (the Keyframes node's
// "keyframes" widget): a list of keys, or {"keyframes": [...], "fps", "num_frames", "interpolation", "relative",
// "base"}; each key has "frame" (pose index) or "time" (seconds) and any of yaw, pitch, roll (degrees), x, y, z. The
// interpolation here gives a2h_core/pose/interpolation.py's numbers: web/tests/pose_curve_logic.test.mjs checks it
// against fixtures written by Python (web/tests/fixtures/keyframe_curves.json from web/tests/make_fixtures.py).

/** The six pose channels, in the order of the a2h_pose payload and of a2h_core.pose's yaw/pitch/roll + x/y/z view. */
export const CHANNELS = ["yaw", "pitch", "roll", "x", "y", "z"];

/** Channels drawn in the top panel (degrees) and the bottom panel (translation, camera units). */
export const ROTATION_CHANNELS = ["yaw", "pitch", "roll"];
export const TRANSLATION_CHANNELS = ["x", "y", "z"];

export const CHANNEL_COLORS = {
  yaw: "#ff6b6b",
  pitch: "#4dabf7",
  roll: "#51cf66",
  x: "#ffa94d",
  y: "#cc5de8",
  z: "#20c997",
};

/** a2h_core.pose's INTERPOLATIONS. */
export const INTERPOLATIONS = ["linear", "smooth", "ease"];

/** a2h_core.pose's DEFAULT_YPR: a frontal head in the middle of the training translations (channels no key sets). */
export const DEFAULT_YPR = { yaw: 0, pitch: 0, roll: 0, x: 28.25, y: 42.0, z: 280.55 };

export const DEFAULT_FPS = 25;

// ---------------------------------------------------------------------------------------------------------------
// Plot geometry. A panel maps time (seconds) to x and a value to y inside a pixel rectangle.

/** Smallest value span a panel shows, so a flat curve is not stretched over the whole height. */
export const MIN_SPAN = { rotation: 10, translation: 20 };

/**
 * A "nice" [lo, hi] range around the values, with 10% headroom and at least `minSpan` wide.
 * @param {number[]} values
 * @param {number} minSpan
 */
export function valueRange(values, minSpan) {
  const finite = values.filter(Number.isFinite);
  let lo = finite.length ? Math.min(...finite) : 0;
  let hi = finite.length ? Math.max(...finite) : 0;
  const pad = Math.max((hi - lo) * 0.1, (minSpan - (hi - lo)) / 2, 0);
  lo -= pad;
  hi += pad;
  if (hi - lo < minSpan) {
    const mid = (lo + hi) / 2;
    lo = mid - minSpan / 2;
    hi = mid + minSpan / 2;
  }
  return [lo, hi];
}

/**
 * A panel: a pixel rectangle with a time axis [t0, t1] and a value axis [v0, v1] (v1 at the top).
 * @returns {{rect: number[], t0: number, t1: number, v0: number, v1: number}}
 */
export function makePanel(rect, t0, t1, v0, v1) {
  return { rect, t0, t1: t1 > t0 ? t1 : t0 + 1, v0, v1: v1 > v0 ? v1 : v0 + 1 };
}

export function toPixel(panel, t, v) {
  const [x, y, w, h] = panel.rect;
  return [x + ((t - panel.t0) / (panel.t1 - panel.t0)) * w, y + (1 - (v - panel.v0) / (panel.v1 - panel.v0)) * h];
}

export function fromPixel(panel, px, py) {
  const [x, y, w, h] = panel.rect;
  return [panel.t0 + ((px - x) / w) * (panel.t1 - panel.t0), panel.v0 + (1 - (py - y) / h) * (panel.v1 - panel.v0)];
}

export function insideRect(rect, px, py) {
  const [x, y, w, h] = rect;
  return px >= x && px <= x + w && py >= y && py <= y + h;
}


// ---------------------------------------------------------------------------------------------------------------
// Interpolation, as a2h_core.pose's `interpolate_keys`: values at times `at` through knots (t ascending, v); the first and
// last values are held outside the knots.

/** Fritsch-Carlson monotone slopes at the knots (a2h_core.pose `_pchip_slopes`, scipy's PchipInterpolator choice). */
export function pchipSlopes(t, v) {
  const n = t.length;
  const h = [];
  const delta = [];
  for (let i = 0; i < n - 1; i++) {
    h.push(t[i + 1] - t[i]);
    delta.push((v[i + 1] - v[i]) / h[i]);
  }
  if (n === 2) return [delta[0], delta[0]];
  const slopes = new Array(n).fill(0);
  for (let i = 1; i < n - 1; i++) {
    const w1 = 2 * h[i] + h[i - 1];
    const w2 = h[i] + 2 * h[i - 1];
    slopes[i] = delta[i - 1] * delta[i] > 0 ? (w1 + w2) / (w1 / delta[i - 1] + w2 / delta[i]) : 0;
  }
  const edge = (h0, h1, d0, d1) => {
    const slope = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1);
    if (Math.sign(slope) !== Math.sign(d0)) return 0;
    if (Math.sign(d0) !== Math.sign(d1) && Math.abs(slope) > Math.abs(3 * d0)) return 3 * d0;
    return slope;
  };
  slopes[0] = edge(h[0], h[1], delta[0], delta[1]);
  slopes[n - 1] = edge(h[n - 2], h[n - 3], delta[n - 2], delta[n - 3]);
  return slopes;
}

/**
 * Interpolated values at each of `at` through the knots (t, v).
 * @param {number[]} t knot positions, ascending
 * @param {number[]} v knot values
 * @param {number[]} at positions to evaluate
 * @param {"linear"|"smooth"|"ease"} mode
 */
export function interpolateKeys(t, v, at, mode) {
  if (!INTERPOLATIONS.includes(mode)) throw new Error(`unknown interpolation ${mode}`);
  if (t.length === 1) return at.map(() => v[0]);
  const slopes = mode === "smooth" ? pchipSlopes(t, v) : null;
  const last = t.length - 1;
  return at.map((position) => {
    const x = Math.min(Math.max(position, t[0]), t[last]);
    let seg = 0; // the last knot <= x (searchsorted right - 1), kept inside 0 .. last - 1
    while (seg < last - 1 && t[seg + 1] <= x) seg++;
    const h = t[seg + 1] - t[seg];
    const u = (x - t[seg]) / h;
    const v0 = v[seg];
    const v1 = v[seg + 1];
    if (mode === "linear") return v0 + (v1 - v0) * u;
    if (mode === "ease") return v0 + (v1 - v0) * (u * u * (3 - 2 * u));
    const h00 = 2 * u ** 3 - 3 * u ** 2 + 1;
    const h10 = u ** 3 - 2 * u ** 2 + u;
    const h01 = -2 * u ** 3 + 3 * u ** 2;
    const h11 = u ** 3 - u ** 2;
    return h00 * v0 + h10 * h * slopes[seg] + h01 * v1 + h11 * h * slopes[seg + 1];
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Rotations, for a "base" given as six axis-angle numbers (a2h_core.pose `rotvec_to_matrix`, `matrix_to_ypr`).

function rotvecToMatrix([rx, ry, rz]) {
  const theta = Math.hypot(rx, ry, rz);
  const s = theta > 0 ? theta : 1;
  const [x, y, z] = [rx / s, ry / s, rz / s];
  const c = Math.cos(theta);
  const n = Math.sin(theta);
  const k = 1 - c;
  return [
    [c + k * x * x, k * x * y - n * z, k * x * z + n * y],
    [k * y * x + n * z, c + k * y * y, k * y * z - n * x],
    [k * z * x - n * y, k * z * y + n * x, c + k * z * z],
  ];
}

function matrixToYpr(m) {
  const deg = 180 / Math.PI;
  return [
    Math.asin(Math.min(Math.max(m[0][2], -1), 1)) * deg,
    Math.atan2(-m[1][2], m[2][2]) * deg,
    Math.atan2(-m[0][1], m[0][0]) * deg,
  ];
}

/** A "base" of a keyframe document (missing, {yaw..z} or six axis-angle numbers) as channel -> value. */
export function baseYpr(base) {
  if (base === undefined || base === null) return { ...DEFAULT_YPR };
  if (Array.isArray(base)) {
    const [yaw, pitch, roll] = matrixToYpr(rotvecToMatrix(base.slice(0, 3)));
    return { yaw, pitch, roll, x: base[3], y: base[4], z: base[5] };
  }
  return Object.fromEntries(CHANNELS.map((c) => [c, Number.isFinite(base[c]) ? base[c] : DEFAULT_YPR[c]]));
}

// ---------------------------------------------------------------------------------------------------------------
// Keyframe documents. A document is {spec, keyframes}: `spec` the top-level fields of the JSON object (null when
// the widget holds a bare list), `keyframes` the key objects sorted by frame. Unknown fields are kept as they are.

const KEY_FIELDS = new Set(["frame", "time", ...CHANNELS]);

/**
 * Parses the widget's JSON. Returns {ok: true, doc} or {ok: false, error} with a message for the user. The checks
 * are a2h_core.pose's, so a text the editor accepts is one the node accepts.
 * @param {string} text
 */
export function parseKeyframes(text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: `not valid JSON: ${error.message}` };
  }
  const isList = Array.isArray(data);
  if (!isList && !(data && typeof data === "object" && Array.isArray(data.keyframes))) {
    return { ok: false, error: 'expected a list of keyframes or an object with a "keyframes" list' };
  }
  const { keyframes: keys, ...spec } = isList ? { keyframes: data } : data;
  if (!keys.length) return { ok: false, error: "no keyframes" };
  const doc = { spec: isList ? null : spec, keyframes: keys.map((k) => ({ ...k })) };
  if (doc.spec?.interpolation !== undefined && !INTERPOLATIONS.includes(doc.spec.interpolation)) {
    return { ok: false, error: `interpolation must be one of ${INTERPOLATIONS.join(", ")}` };
  }
  const fps = settingsOf(doc).fps;
  if (!(fps > 0)) return { ok: false, error: "fps must be a positive number" };
  for (const [i, key] of keys.entries()) {
    if (!key || typeof key !== "object" || Array.isArray(key)) return { ok: false, error: `keyframe ${i} must be an object` };
    const unknown = Object.keys(key).filter((name) => !KEY_FIELDS.has(name));
    if (unknown.length) return { ok: false, error: `keyframe ${i} has unknown fields ${unknown.join(", ")}` };
    if (("frame" in key) === ("time" in key)) return { ok: false, error: `keyframe ${i} needs exactly one of frame or time` };
    const at = keyFrame(key, fps);
    if (!Number.isFinite(at) || at < 0) return { ok: false, error: `keyframe ${i} must be at frame >= 0` };
    for (const c of CHANNELS) {
      if (key[c] !== undefined && key[c] !== null && !Number.isFinite(key[c])) {
        return { ok: false, error: `keyframe ${i}: ${c} must be a finite number` };
      }
    }
  }
  doc.keyframes.sort((a, b) => keyFrame(a, fps) - keyFrame(b, fps));
  for (let i = 1; i < doc.keyframes.length; i++) {
    if (keyFrame(doc.keyframes[i], fps) === keyFrame(doc.keyframes[i - 1], fps)) {
      return { ok: false, error: `two keyframes sit at frame ${keyFrame(doc.keyframes[i], fps)}` };
    }
  }
  return { ok: true, doc };
}

/**
 * Effective settings of a document: its own fields first, then `defaults` (the node's other widgets), then a2h_core.pose's
 * defaults. numPoses is null when the curve ends at the last keyframe.
 */
export function settingsOf(doc, defaults = {}) {
  const spec = doc.spec ?? {};
  const numPoses = spec.num_frames ?? spec.num_poses ?? defaults.numPoses ?? null;
  return {
    fps: Number(spec.fps ?? defaults.fps ?? DEFAULT_FPS),
    interpolation: spec.interpolation ?? defaults.interpolation ?? "smooth",
    relative: Boolean(spec.relative ?? defaults.relative ?? false),
    base: baseYpr(spec.base ?? defaults.base),
    numPoses: numPoses === null || numPoses === undefined || numPoses <= 0 ? null : Math.floor(numPoses),
  };
}

/** The pose index a key sits at (may be fractional). */
export function keyFrame(key, fps) {
  return "frame" in key ? Number(key.frame) : Number(key.time) * fps;
}

function hasValue(key, channel) {
  return key[channel] !== undefined && key[channel] !== null;
}

/** The widget's JSON text of a document: one keyframe per line, numbers rounded to 1e-3 for people to read. */
export function serializeKeyframes(doc) {
  const lines = doc.keyframes.map((k) => JSON.stringify(roundNumbers(k)));
  if (doc.spec === null) return `[\n  ${lines.join(",\n  ")}\n]`;
  const fields = Object.entries(doc.spec).map(([name, value]) => ` ${JSON.stringify(name)}: ${JSON.stringify(value)},\n`);
  return `{\n${fields.join("")} "keyframes": [\n  ${lines.join(",\n  ")}\n ]\n}`;
}

function roundNumbers(key) {
  return Object.fromEntries(
    Object.entries(key).map(([name, value]) => [name, typeof value === "number" ? Math.round(value * 1000) / 1000 : value]),
  );
}

export function keyframeCount(doc) {
  return doc.keyframes.length;
}

/** Number of poses of the curve: the setting, or up to the last keyframe (a2h_core.pose's rule). */
export function curveLength(doc, defaults = {}) {
  const settings = settingsOf(doc, defaults);
  if (settings.numPoses) return settings.numPoses;
  const last = Math.max(...doc.keyframes.map((k) => keyFrame(k, settings.fps)));
  return Math.floor(last) + 1;
}

/**
 * The curve the node will build, in people's units: channel -> values at poses 0 .. n-1 (a2h_core.pose's `ypr` before
 * the conversion to axis-angle), plus the poses' times in seconds. `at` (pose indices) overrides the poses.
 */
export function sampleCurve(doc, defaults = {}, at = null) {
  const settings = settingsOf(doc, defaults);
  const frames = at ?? Array.from({ length: curveLength(doc, defaults) }, (_, i) => i);
  const series = { times: frames.map((f) => f / settings.fps) };
  for (const c of CHANNELS) {
    const keys = doc.keyframes.filter((k) => hasValue(k, c));
    if (!keys.length) {
      series[c] = frames.map(() => settings.base[c]);
      continue;
    }
    const values = interpolateKeys(
      keys.map((k) => keyFrame(k, settings.fps)),
      keys.map((k) => Number(k[c])),
      frames,
      settings.interpolation,
    );
    series[c] = settings.relative ? values.map((v) => settings.base[c] + v) : values;
  }
  return series;
}

/** channel -> [[seconds, shown value, key index], ...]: the handles of the keys that set each channel. */
export function keyframePoints(doc, defaults = {}) {
  const { fps, relative, base } = settingsOf(doc, defaults);
  return Object.fromEntries(
    CHANNELS.map((c) => [
      c,
      doc.keyframes.flatMap((k, index) =>
        hasValue(k, c) ? [[keyFrame(k, fps) / fps, Number(k[c]) + (relative ? base[c] : 0), index]] : [],
      ),
    ]),
  );
}

/** Time span the editor shows, in seconds: from 0 to the later of the curve's end and the last key. */
export function keyframeTimeRange(doc, defaults = {}) {
  const { fps } = settingsOf(doc, defaults);
  const last = Math.max(curveLength(doc, defaults) - 1, ...doc.keyframes.map((k) => keyFrame(k, fps)));
  return [0, last > 0 ? last / fps : 1];
}

/** Smallest distance between keys the editor keeps when dragging, in frames. */
export const MIN_KEY_GAP = 1;

/**
 * Moves key `index`: its `channel` shows `value` and it sits at `seconds`, kept at least MIN_KEY_GAP frames from
 * its neighbours and at frame >= 0. Written in the key's own unit (frame or time). Returns {doc, index}.
 */
export function moveKeyframe(doc, index, channel, seconds, value, defaults = {}) {
  const { fps, relative, base } = settingsOf(doc, defaults);
  const keyframes = doc.keyframes.map((k) => ({ ...k }));
  const key = keyframes[index];
  key[channel] = relative ? value - base[channel] : value;
  const lo = index > 0 ? keyFrame(keyframes[index - 1], fps) + MIN_KEY_GAP : 0;
  const hi = index + 1 < keyframes.length ? keyFrame(keyframes[index + 1], fps) - MIN_KEY_GAP : Infinity;
  if (lo <= hi) {
    const frame = Math.min(Math.max(seconds * fps, lo), hi);
    if ("frame" in key) key.frame = frame;
    else key.time = frame / fps;
  }
  return { doc: { ...doc, keyframes }, index };
}

/**
 * Inserts a key at `seconds` (rounded to a whole frame) setting every channel to the curve's value there, in the
 * unit the first key uses. Returns {doc, index}; index -1 when a key already sits at that frame.
 */
export function addKeyframe(doc, seconds, defaults = {}) {
  const { fps, relative, base } = settingsOf(doc, defaults);
  const frame = Math.max(0, Math.round(seconds * fps));
  const frames = doc.keyframes.map((k) => keyFrame(k, fps));
  if (frames.some((f) => Math.abs(f - frame) < 0.5)) return { doc, index: -1 };
  const sampled = sampleCurve(doc, defaults, [frame]);
  const key = "time" in doc.keyframes[0] ? { time: frame / fps } : { frame };
  for (const c of CHANNELS) key[c] = sampled[c][0] - (relative ? base[c] : 0);
  const index = frames.filter((f) => f < frame).length;
  const keyframes = doc.keyframes.map((k) => ({ ...k }));
  keyframes.splice(index, 0, key);
  return { doc: { ...doc, keyframes }, index };
}

/** Removes key `index` (the last one left stays: a curve needs a key). */
export function deleteKeyframe(doc, index) {
  if (doc.keyframes.length <= 1) return doc;
  return { ...doc, keyframes: doc.keyframes.filter((_, i) => i !== index) };
}

/** [{index, channel, before, after}] of the key fields that differ between two documents with as many keys. */
export function describeKeyframeChange(before, after) {
  if (before.keyframes.length !== after.keyframes.length) return null;
  const changes = [];
  before.keyframes.forEach((key, index) => {
    const other = after.keyframes[index];
    for (const name of KEY_FIELDS) {
      const a = key[name] ?? null;
      const b = other[name] ?? null;
      if (a === b) continue;
      if (typeof a === "number" && typeof b === "number" && Math.abs(a - b) <= 1e-9) continue;
      changes.push({ index, channel: name, before: a, after: b });
    }
  });
  return changes;
}

export function panelOfChannel(layout, channel) {
  return ROTATION_CHANNELS.includes(channel) ? layout.rotation : layout.translation;
}

/**
 * The key handle under a pointer: {index, channel} or null. Looks within `radius` pixels, nearest first, skipping
 * hidden channels.
 */
export function hitTest(layout, doc, px, py, hidden = new Set(), defaults = {}, radius = 8) {
  let best = null;
  const points = keyframePoints(doc, defaults);
  for (const channel of CHANNELS) {
    if (hidden.has(channel)) continue;
    const panel = panelOfChannel(layout, channel);
    for (const [t, v, index] of points[channel]) {
      const [x, y] = toPixel(panel, t, v);
      const distance = Math.hypot(x - px, y - py);
      if (distance <= radius && (!best || distance < best.distance)) best = { index, channel, distance };
    }
  }
  return best && { index: best.index, channel: best.channel };
}
