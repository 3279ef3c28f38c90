// Canvas drawing of head-pose curves, shared by the keyframe editor and the result plots.
// Geometry (panels, ranges, pixel mapping) comes from pose_curve_logic.js; this file only paints.

import {
  CHANNEL_COLORS,
  MIN_SPAN,
  ROTATION_CHANNELS,
  TRANSLATION_CHANNELS,
  makePanel,
  toPixel,
  valueRange,
} from "./pose_curve_logic.js";

const BACKGROUND = "#1b1b1b";
const GRID = "#333";
const TEXT = "#aaa";
const LEGEND_HEIGHT = 16;
const AXIS_WIDTH = 38;
const TIME_AXIS_HEIGHT = 14;

/**
 * Lays out the legend and two panels (rotation in degrees on top, translation below) in a width x height canvas.
 * `series` maps channel -> {times, values}; the channels present decide each panel's value range.
 * `frozen` (optional) keeps earlier value ranges, so a point being dragged stays under the pointer.
 */
export function layoutPanels(width, height, t0, t1, series, frozen) {
  const plotX = AXIS_WIDTH;
  const plotW = Math.max(10, width - AXIS_WIDTH - 6);
  const top = LEGEND_HEIGHT + 4;
  const gap = 10;
  const panelH = Math.max(10, (height - top - TIME_AXIS_HEIGHT - gap) / 2);
  const rangeOf = (channels, minSpan) =>
    valueRange(
      channels.flatMap((c) => (series[c] ? series[c].values : [])),
      minSpan,
    );
  const rot = frozen?.rotation ?? rangeOf(ROTATION_CHANNELS, MIN_SPAN.rotation);
  const tra = frozen?.translation ?? rangeOf(TRANSLATION_CHANNELS, MIN_SPAN.translation);
  return {
    rotation: makePanel([plotX, top, plotW, panelH], t0, t1, rot[0], rot[1]),
    translation: makePanel([plotX, top + panelH + gap, plotW, panelH], t0, t1, tra[0], tra[1]),
    legend: [plotX, 0, plotW, LEGEND_HEIGHT],
  };
}

/** Pixel boxes of the legend entries, for drawing and for click-to-toggle. */
export function legendBoxes(layout, channels) {
  const [x0, y0, w] = layout.legend;
  const step = w / channels.length;
  return channels.map((c, i) => ({ channel: c, rect: [x0 + i * step, y0, step, LEGEND_HEIGHT] }));
}

function fmt(v) {
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function drawPanelFrame(ctx, panel, label) {
  const [x, y, w, h] = panel.rect;
  ctx.strokeStyle = GRID;
  ctx.lineWidth = 1;
  ctx.strokeRect(x + 0.5, y + 0.5, w, h);
  if (panel.v0 < 0 && panel.v1 > 0) {
    const [, zy] = toPixel(panel, panel.t0, 0);
    ctx.beginPath();
    ctx.setLineDash([3, 3]);
    ctx.moveTo(x, zy);
    ctx.lineTo(x + w, zy);
    ctx.stroke();
    ctx.setLineDash([]);
  }
  ctx.fillStyle = TEXT;
  ctx.font = "10px sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "top";
  ctx.fillText(fmt(panel.v1), x - 3, y);
  ctx.textBaseline = "bottom";
  ctx.fillText(fmt(panel.v0), x - 3, y + h);
  ctx.textBaseline = "middle";
  ctx.fillText(label, x - 3, y + h / 2);
}

function drawTimeAxis(ctx, panel) {
  const [x, y, w, h] = panel.rect;
  ctx.fillStyle = TEXT;
  ctx.font = "10px sans-serif";
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillText(`${fmt(panel.t0)} s`, x, y + h + 2);
  ctx.textAlign = "right";
  ctx.fillText(`${fmt(panel.t1)} s`, x + w, y + h + 2);
}

/**
 * Paints curves and, for the editor, keyframe handles.
 * @param {CanvasRenderingContext2D} ctx
 * @param {object} layout from layoutPanels
 * @param {object} series channel -> {times: number[], values: number[]}
 * @param {object} options {hidden: Set, keyframes: channel -> [[t, v, key index]], selected: {index, channel}, title,
 *   dashed: Set of channels drawn dashed (constant ones no key sets), translationLabel}
 */
export function drawPosePlot(ctx, width, height, layout, series, options = {}) {
  const hidden = options.hidden ?? new Set();
  ctx.fillStyle = BACKGROUND;
  ctx.fillRect(0, 0, width, height);
  drawPanelFrame(ctx, layout.rotation, "deg");
  drawPanelFrame(ctx, layout.translation, options.translationLabel ?? "xyz");
  drawTimeAxis(ctx, layout.translation);

  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  ctx.textAlign = "left";
  for (const { channel, rect } of legendBoxes(layout, Object.keys(CHANNEL_COLORS))) {
    const off = hidden.has(channel);
    ctx.globalAlpha = off ? 0.35 : 1;
    ctx.fillStyle = CHANNEL_COLORS[channel];
    ctx.fillRect(rect[0] + 2, rect[1] + 5, 8, 8);
    ctx.fillText(channel, rect[0] + 13, rect[1] + 9);
  }
  ctx.globalAlpha = 1;
  if (options.title) {
    ctx.fillStyle = TEXT;
    ctx.textAlign = "right";
    ctx.fillText(options.title, width - 4, layout.rotation.rect[1] + 8);
  }

  const panelOf = (c) => (ROTATION_CHANNELS.includes(c) ? layout.rotation : layout.translation);
  for (const [channel, { times, values }] of Object.entries(series)) {
    if (hidden.has(channel) || !times.length) continue;
    const panel = panelOf(channel);
    const [px, py, pw, ph] = panel.rect;
    ctx.save();
    ctx.beginPath();
    ctx.rect(px, py, pw, ph);
    ctx.clip();
    ctx.strokeStyle = CHANNEL_COLORS[channel];
    ctx.lineWidth = 1.5;
    ctx.setLineDash(options.dashed?.has(channel) ? [4, 4] : []);
    ctx.beginPath();
    times.forEach((t, i) => {
      const [x, y] = toPixel(panel, t, values[i]);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
    ctx.restore();
  }

  for (const [channel, points] of Object.entries(options.keyframes ?? {})) {
    if (hidden.has(channel)) continue;
    const panel = panelOf(channel);
    for (const [t, v, index] of points) {
      const [x, y] = toPixel(panel, t, v);
      const selected = options.selected && options.selected.index === index && options.selected.channel === channel;
      ctx.beginPath();
      ctx.arc(x, y, selected ? 6 : 4.5, 0, Math.PI * 2);
      ctx.fillStyle = selected ? "#fff" : CHANNEL_COLORS[channel];
      ctx.fill();
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 1;
      ctx.stroke();
    }
  }
}
