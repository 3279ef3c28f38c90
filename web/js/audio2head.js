// ComfyUI frontend extension of ComfyUI-Audio2Head:
// - a pose-curve editor on the Audio2HeadPoseKeyframes node (drag, add and delete keyframes; the JSON lives in the
//   node's "keyframes" widget, so it is saved with the workflow);
// - a plot of the resulting pose curve on every node that sends one in its UI output (key "a2h_pose").
// The logic (parsing, interpolation, hit-testing) is in pose_curve_logic.js and tested with node --test.

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import {
  CHANNELS,
  ROTATION_CHANNELS,
  TRANSLATION_CHANNELS,
  addKeyframe,
  deleteKeyframe,
  hitTest,
  keyframePoints,
  keyframeTimeRange,
  moveKeyframe,
  parseKeyframes,
  sampleCurve,
  serializeKeyframes,
  fromPixel,
  insideRect,
  panelOfChannel,
  settingsOf,
  keyFrame,
  toPixel,
} from "./pose_curve_logic.js";
import { drawPosePlot, layoutPanels, legendBoxes } from "./pose_plot.js";

const KEYFRAME_NODE = "Audio2HeadPoseKeyframes";
const POSE_LOAD_NODE = "Audio2HeadPoseLoad";
const CURVE_FILE_TYPES = ".json,.csv";

// An upload button for Pose Load, as core Load Audio has: the file goes through ComfyUI's own upload route into the
// input folder (the only folder the node reads besides the pack's examples) and is selected in the "path" combo.
function attachCurveUpload(node) {
  const pathWidget = node.widgets?.find((widget) => widget.name === "path");
  if (!pathWidget) return;
  const chooser = document.createElement("input");
  Object.assign(chooser, { type: "file", accept: CURVE_FILE_TYPES });
  chooser.style.display = "none";
  document.body.append(chooser);
  chooser.addEventListener("change", async () => {
    const file = chooser.files?.[0];
    chooser.value = "";
    if (!file) return;
    const body = new FormData();
    body.append("image", file);
    body.append("type", "input");
    const response = await api.fetchApi("/upload/image", { method: "POST", body });
    if (response.status !== 200) {
      alert(`Upload of ${file.name} failed: ${response.status} ${response.statusText}`);
      return;
    }
    const { name, subfolder } = await response.json();
    const value = subfolder ? `${subfolder}/${name}` : name;
    const values = pathWidget.options?.values;
    if (Array.isArray(values) && !values.includes(value)) values.push(value);
    pathWidget.value = value;
    pathWidget.callback?.(value);
    markGraphChanged(node);
  });
  node.addWidget("button", "upload curve file", null, () => chooser.click(), { serialize: false });
  const onRemoved = node.onRemoved;
  node.onRemoved = function (...args) {
    chooser.remove();
    return onRemoved?.apply(this, args);
  };
}
const KEYFRAME_WIDGET = "keyframes";
const POSE_UI_KEY = "a2h_pose";
const EDITOR_HEIGHT = 260;
const RESULT_HEIGHT = 200;

/** A canvas inside a DOM widget that repaints itself at the device pixel ratio whenever it is resized. */
function createCanvasWidget(node, name, className, height, paint) {
  const element = document.createElement("div");
  element.className = `a2h-plot ${className}`;
  element.style.cssText = "width:100%;height:100%;position:relative;";
  const canvas = document.createElement("canvas");
  canvas.className = className;
  canvas.style.cssText = "width:100%;height:100%;display:block;border-radius:4px;touch-action:none;";
  element.appendChild(canvas);

  const repaint = () => {
    // CSS size before the graph zoom's transform: the plot's own coordinate system (see canvasPoint).
    const width = Math.max(1, canvas.clientWidth);
    const h = Math.max(1, canvas.clientHeight);
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(h * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    paint(ctx, width, h);
  };
  new ResizeObserver(repaint).observe(canvas);

  const widget = node.addDOMWidget(name, "a2h_plot", element, {
    serialize: false, // the plot is a view: nothing of it goes into the workflow or the prompt
    hideOnZoom: false,
    getMinHeight: () => height,
    getValue: () => undefined,
    setValue: () => {},
  });
  widget.serialize = false;
  return { widget, canvas, repaint };
}

/** Pointer position in CSS pixels of the canvas. */
function canvasPoint(canvas, event) {
  const rect = canvas.getBoundingClientRect();
  // The canvas may be scaled by the graph zoom: map client pixels back to the canvas' own CSS size.
  const sx = canvas.clientWidth / (rect.width || 1);
  const sy = canvas.clientHeight / (rect.height || 1);
  return [(event.clientX - rect.left) * sx, (event.clientY - rect.top) * sy];
}

/** channel -> {times, values}: the curve the node will build, one value per pose. */
function seriesFromDoc(doc) {
  const sampled = sampleCurve(doc);
  return Object.fromEntries(CHANNELS.map((c) => [c, { times: sampled.times, values: sampled[c] }]));
}

function markGraphChanged(node) {
  node.setDirtyCanvas?.(true, true);
  app.graph?.setDirtyCanvas?.(true, true);
  // Lets the workflow tab show its "modified" mark and undo see the edit.
  app.extensionManager?.workflow?.activeWorkflow?.changeTracker?.checkState?.();
}

function describe(doc) {
  const { interpolation, relative } = settingsOf(doc);
  return `${interpolation}${relative ? ", relative" : ""} - drag keys, double-click: add/delete`;
}

/** The keyframe editor: reads and writes the JSON string of the node's "keyframes" widget. */
function attachKeyframeEditor(node) {
  const source = node.widgets?.find((w) => w.name === KEYFRAME_WIDGET);
  if (!source) return;
  const state = { text: null, doc: null, error: null, drag: null, selected: null, hidden: new Set(), layout: null };

  const sync = () => {
    const text = String(source.value ?? "");
    if (text === state.text) return;
    state.text = text;
    const parsed = parseKeyframes(text);
    state.doc = parsed.ok ? parsed.doc : state.doc;
    state.error = parsed.ok ? null : parsed.error;
  };

  const paint = (ctx, width, height) => {
    sync();
    if (!state.doc) {
      ctx.fillStyle = "#1b1b1b";
      ctx.fillRect(0, 0, width, height);
      ctx.fillStyle = "#f66";
      ctx.font = "12px sans-serif";
      ctx.fillText(state.error ?? "no keyframes", 8, 20);
      return;
    }
    const [t0, t1] = state.drag?.timeRange ?? keyframeTimeRange(state.doc);
    const series = seriesFromDoc(state.doc);
    const points = keyframePoints(state.doc);
    // Channels no key sets hold the base pose: drawn dashed, and left out of the ranges when a keyed channel
    // shares their panel (z sits ~250 units from x and y and would flatten them).
    const constant = new Set(CHANNELS.filter((c) => !points[c].length));
    const ranged = Object.fromEntries(
      Object.entries(series).filter(([c]) => {
        const group = ROTATION_CHANNELS.includes(c) ? ROTATION_CHANNELS : TRANSLATION_CHANNELS;
        return !constant.has(c) || group.every((other) => constant.has(other));
      }),
    );
    state.layout = layoutPanels(width, height, t0, t1, ranged, state.drag?.ranges);
    drawPosePlot(ctx, width, height, state.layout, series, {
      hidden: state.hidden,
      dashed: constant,
      keyframes: points,
      selected: state.selected,
      title: state.error ? `JSON error (${state.error}): showing the last valid curve` : describe(state.doc),
    });
  };

  const { widget, canvas, repaint } = createCanvasWidget(node, "pose_editor", "a2h-pose-editor", EDITOR_HEIGHT, paint);

  const commit = () => {
    const text = serializeKeyframes(state.doc);
    state.text = text;
    source.value = text;
    source.callback?.(text);
    markGraphChanged(node);
  };

  canvas.addEventListener("pointerdown", (event) => {
    if (!state.doc || !state.layout || event.button !== 0) return;
    const [px, py] = canvasPoint(canvas, event);
    for (const { channel, rect } of legendBoxes(state.layout, CHANNELS)) {
      if (insideRect(rect, px, py)) {
        state.hidden.has(channel) ? state.hidden.delete(channel) : state.hidden.add(channel);
        repaint();
        event.stopPropagation();
        return;
      }
    }
    const hit = hitTest(state.layout, state.doc, px, py, state.hidden);
    state.selected = hit;
    if (hit) {
      const { rotation, translation } = state.layout;
      state.drag = {
        ...hit,
        timeRange: [rotation.t0, rotation.t1],
        ranges: { rotation: [rotation.v0, rotation.v1], translation: [translation.v0, translation.v1] },
      };
      canvas.setPointerCapture(event.pointerId);
      event.preventDefault();
      event.stopPropagation();
    }
    repaint();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!state.drag) return;
    const [px, py] = canvasPoint(canvas, event);
    const panel = panelOfChannel(state.layout, state.drag.channel);
    const [t, v] = fromPixel(panel, px, py);
    const moved = moveKeyframe(state.doc, state.drag.index, state.drag.channel, t, v);
    state.doc = moved.doc;
    state.drag.index = moved.index;
    state.selected = { index: moved.index, channel: state.drag.channel };
    commit();
    repaint();
    event.stopPropagation();
  });
  const endDrag = (event) => {
    if (!state.drag) return;
    state.drag = null;
    canvas.releasePointerCapture?.(event.pointerId);
    repaint();
  };
  canvas.addEventListener("pointerup", endDrag);
  canvas.addEventListener("pointercancel", endDrag);

  canvas.addEventListener("dblclick", (event) => {
    if (!state.doc || !state.layout) return;
    const [px, py] = canvasPoint(canvas, event);
    const hit = hitTest(state.layout, state.doc, px, py, state.hidden);
    if (hit) {
      state.doc = deleteKeyframe(state.doc, hit.index);
      state.selected = null;
    } else {
      const panel = [state.layout.rotation, state.layout.translation].find((p) => insideRect(p.rect, px, py));
      if (!panel) return;
      const added = addKeyframe(state.doc, fromPixel(panel, px, py)[0]);
      state.doc = added.doc;
      state.selected = { index: added.index, channel: panel === state.layout.rotation ? "yaw" : "x" };
    }
    commit();
    repaint();
    event.stopPropagation();
  });
  canvas.addEventListener("contextmenu", (event) => {
    if (!state.doc || !state.layout) return;
    const [px, py] = canvasPoint(canvas, event);
    const hit = hitTest(state.layout, state.doc, px, py, state.hidden);
    if (!hit) return;
    event.preventDefault();
    event.stopPropagation();
    state.doc = deleteKeyframe(state.doc, hit.index);
    state.selected = null;
    commit();
    repaint();
  });

  // Text edits in the JSON box and values loaded from a workflow repaint the plot.
  const previousCallback = source.callback;
  source.callback = function (value, ...rest) {
    const result = previousCallback?.apply(this, [value, ...rest]);
    repaint();
    return result;
  };
  source.element?.addEventListener?.("input", repaint);
  const previousConfigure = node.onConfigure;
  node.onConfigure = function (...args) {
    const result = previousConfigure?.apply(this, args);
    repaint();
    return result;
  };
  // Geometry for tests and tools that drive the editor with a real pointer (tests/browser/check_workflows.mjs):
  // where a keyframe's handle is, in the canvas' CSS pixels, and how many plot units one pixel is.
  widget.a2hHandle = (index, channel) => {
    if (!state.layout || !state.doc) return null;
    const point = keyframePoints(state.doc)[channel].find(([, , key]) => key === index);
    if (!point) return null;
    const panel = panelOfChannel(state.layout, channel);
    const [x, y] = toPixel(panel, point[0], point[1]);
    return { x, y, value: point[1], canvasWidth: canvas.clientWidth, unitsPerPixel: (panel.v1 - panel.v0) / panel.rect[3] };
  };
  // A point of the rotation panel half-way between keyframes 0 and 1, away from every handle.
  widget.a2hEmptySpot = () => {
    if (!state.layout || state.doc.keyframes.length < 2) return null;
    const panel = state.layout.rotation;
    const { fps } = settingsOf(state.doc);
    const time = (keyFrame(state.doc.keyframes[0], fps) + keyFrame(state.doc.keyframes[1], fps)) / 2 / fps;
    const [x] = toPixel(panel, time, 0);
    return { x, y: panel.rect[1] + panel.rect[3] - 3 };
  };
}

/** Plots the curve a node sent under "a2h_pose" after it ran. */
function showResultPlot(node, curves) {
  const curve = Array.isArray(curves) ? curves[0] : curves;
  if (!curve || !Array.isArray(curve.yaw)) return;
  if (!node.a2hResultPlot) {
    const plot = { curve: null };
    const paint = (ctx, width, height) => {
      const c = plot.curve;
      if (!c) return;
      const fps = Number(c.fps) || 25;
      const times = c.yaw.map((_, i) => i / fps);
      // Translations as offsets from the first pose: x, y and z sit far apart (z ~280) and move a few units.
      const series = Object.fromEntries(
        CHANNELS.filter((ch) => Array.isArray(c[ch])).map((ch) => [
          ch,
          { times, values: TRANSLATION_CHANNELS.includes(ch) ? c[ch].map((v) => v - c[ch][0]) : c[ch] },
        ]),
      );
      const t1 = times.length > 1 ? times[times.length - 1] : 1;
      const layout = layoutPanels(width, height, 0, t1, series);
      drawPosePlot(ctx, width, height, layout, series, {
        title: `${times.length} poses @ ${fps} fps`,
        translationLabel: "Δxyz",
      });
    };
    const { repaint } = createCanvasWidget(node, "pose_plot", "a2h-pose-result", RESULT_HEIGHT, paint);
    plot.repaint = repaint;
    node.a2hResultPlot = plot;
    const [w, h] = node.computeSize?.() ?? node.size;
    node.setSize?.([Math.max(node.size[0], w), Math.max(node.size[1], h)]);
  }
  node.a2hResultPlot.curve = curve;
  node.a2hResultPlot.repaint();
  markGraphChanged(node);
}

const EXTENSION_NAME = "Audio2Head.PoseCurves";

// ComfyUI serves a pack's web folder once per registration (WEB_DIRECTORY and pyproject's [tool.comfy] web under
// another name); a second copy of this file must not register again.
if (!app.extensions.some((extension) => extension.name === EXTENSION_NAME)) app.registerExtension({
  name: EXTENSION_NAME,
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData?.name?.startsWith("Audio2Head")) return;

    if (nodeData.name === KEYFRAME_NODE) {
      const onNodeCreated = nodeType.prototype.onNodeCreated;
      nodeType.prototype.onNodeCreated = function (...args) {
        const result = onNodeCreated?.apply(this, args);
        attachKeyframeEditor(this);
        const [w, h] = this.computeSize();
        this.setSize([Math.max(this.size[0], w, 420), Math.max(this.size[1], h)]);
        return result;
      };
    }

    if (nodeData.name === POSE_LOAD_NODE) {
      const onNodeCreated = nodeType.prototype.onNodeCreated;
      nodeType.prototype.onNodeCreated = function (...args) {
        const result = onNodeCreated?.apply(this, args);
        attachCurveUpload(this);
        return result;
      };
    }

    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message, ...rest) {
      const result = onExecuted?.apply(this, [message, ...rest]);
      if (message?.[POSE_UI_KEY]) showResultPlot(this, message[POSE_UI_KEY]);
      return result;
    };
  },
});
