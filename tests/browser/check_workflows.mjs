// Opt-in real-browser check of the example workflows and the web extension, in headless Debian chromium driven by
// playwright-core against a running ComfyUI server that has this pack installed.
//
//   node tests/browser/check_workflows.mjs --url http://127.0.0.1:8188 --workflows workflows --out /tmp/a2h-shots \
//        [--run 1] [--resave DIR]
//
// For every workflow: no missing node types, the frontend's own re-save equals the file (node types, widget values,
// slots, links), the API prompt has every node, screenshots. On the keyframe workflow: a keyframe is dragged on the
// pose-curve editor and the saved workflow JSON must change accordingly; a keyframe is added and one deleted.
// --run 1 also queues each workflow and waits for its MP4 (needs the input files and weights on the server).
// --resave DIR writes the frontend's re-save of each workflow to DIR (used to refresh workflows/).
// Console errors, uncaught page errors and failed HTTP requests anywhere fail the check.
// Prints one JSON report line at the end ("REPORT {...}") and exits 1 on any failure.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import {
  describeKeyframeChange,
  keyframeCount,
  parseKeyframes,
  serializeKeyframes,
} from "../../web/js/pose_curve_logic.js";
import { openComfy, parseArgs } from "./common.mjs";

const args = parseArgs(process.argv.slice(2), {
  url: "http://127.0.0.1:8188",
  workflows: "workflows",
  out: "/tmp/a2h-browser",
  run: "0",
  resave: "",
  run_timeout: "900",
});
mkdirSync(args.out, { recursive: true });
const report = { workflows: {}, failures: [], events: [], screenshots: [] };
const fail = (where, message) => report.failures.push(`${where}: ${message}`);
// Requests every page of ComfyUI 0.3.64 with its pinned frontend makes and the server answers 404, with or without
// custom nodes: index.html links "user.css" beside "api/userdata/user.css", and the browser asks for a favicon.
const BASELINE_404 = ["/user.css", "/favicon.ico"];
const isBaseline = (event) => BASELINE_404.some((path) => event.text.includes(`${new URL(args.url).origin}${path}`));

const { browser, page, events } = await openComfy(args.url, { width: 2200, height: 1300 });
try {
  await page.waitForTimeout(1500); // let the start-up requests and extension loading finish
  const extensionLoaded = await page.evaluate(() =>
    window.app.extensions.some((e) => e.name === "Audio2Head.PoseCurves"),
  );
  if (!extensionLoaded) fail("frontend", "extension Audio2Head.PoseCurves is not registered");
  // How the frontend lays out every pack node (widgets, slots): tests/test_browser.py compares it with the layout
  // tests/test_workflows.py derives from /object_info, on which the CI workflow check rests.
  report.pack_layouts = await page.evaluate(() => {
    const layouts = {};
    for (const type of Object.keys(window.LiteGraph.registered_node_types).filter((t) => t.startsWith("Audio2Head"))) {
      const node = window.LiteGraph.createNode(type);
      window.app.graph.add(node);
      const saved = node.serialize();
      layouts[type] = {
        widgets: (node.widgets ?? []).filter((w) => w.serialize !== false).map((w) => w.name),
        inputs: (saved.inputs ?? []).map((i) => [i.name, i.type, i.widget?.name ?? null]),
        outputs: (saved.outputs ?? []).map((o) => [o.name, o.type]),
        widgets_values: saved.widgets_values ?? [],
      };
      window.app.graph.remove(node);
    }
    return layouts;
  });

  const files = readdirSync(args.workflows).filter((f) => f.endsWith(".json")).sort();
  for (const file of files) {
    const name = basename(file, ".json");
    const where = `workflow ${name}`;
    const workflow = JSON.parse(readFileSync(join(args.workflows, file), "utf8"));
    const result = (report.workflows[name] = { nodes: workflow.nodes.length });
    const eventsBefore = events.length;

    const missing = await page.evaluate(
      (types) => types.filter((t) => !(t in window.LiteGraph.registered_node_types)),
      [...new Set(workflow.nodes.map((n) => n.type))],
    );
    if (missing.length) fail(where, `missing node types ${missing.join(", ")}`);
    result.missing = missing;

    // Load without the saved view, so the frontend fits the whole graph in the window for the screenshot.
    const { extra, ...withoutView } = workflow;
    await page.evaluate(async (data) => {
      await window.app.loadGraphData(data, true, true, null, { showMissingModelsDialog: false });
    }, { ...withoutView, extra: {} });
    await page.waitForTimeout(800);
    // Warnings the frontend shows as toasts (workflow schema validation, load errors) count as failures.
    for (const toast of await takeToasts(page)) fail(where, `the frontend warned: ${toast}`);

    const saved = await page.evaluate(() => window.app.graph.serialize());
    if (args.resave) {
      mkdirSync(args.resave, { recursive: true });
      writeFileSync(join(args.resave, file), `${JSON.stringify({ ...saved, extra: workflow.extra ?? saved.extra }, null, 2)}\n`);
    }
    for (const problem of compareWorkflows(workflow, saved)) fail(where, problem);

    const prompt = await page.evaluate(async () => (await window.app.graphToPrompt()).output);
    const executable = workflow.nodes.filter((n) => !["Note", "MarkdownNote"].includes(n.type));
    for (const node of executable) {
      const entry = prompt[String(node.id)];
      if (!entry) fail(where, `node ${node.id} (${node.type}) is missing from the API prompt`);
      else if (entry.class_type !== node.type) fail(where, `prompt node ${node.id} is ${entry.class_type}, not ${node.type}`);
    }
    result.prompt_nodes = Object.keys(prompt).length;

    await fitGraph(page);
    const shot = join(args.out, `${name}.png`);
    await page.screenshot({ path: shot });
    report.screenshots.push(shot);

    if (workflow.nodes.some((n) => n.type === "Audio2HeadPoseKeyframes")) {
      result.editor = await exerciseKeyframeEditor(page, where).catch((error) => {
        fail(where, `the editor check stopped: ${error.message.split("\n")[0]}`);
        return { error: error.message };
      });
      const editorShot = join(args.out, `${name}_editor.png`);
      await page.screenshot({ path: editorShot });
      report.screenshots.push(editorShot);
    }

    if (args.run === "1") {
      result.run = await runWorkflow(page, where, Number(args.run_timeout));
      await fitGraph(page);
      const runShot = join(args.out, `${name}_after_run.png`);
      await page.screenshot({ path: runShot });
      report.screenshots.push(runShot);
    }
    result.console_events = events.slice(eventsBefore);
  }
} finally {
  await browser.close();
}

report.events = events;
report.baseline_events = events.filter(isBaseline).length;
for (const event of events.filter((e) => !isBaseline(e))) fail("browser", `${event.kind}: ${event.text.split("\n")[0]}`);
console.log(`REPORT ${JSON.stringify(report)}`);
for (const failure of report.failures) console.error(`FAIL ${failure}`);
console.log(report.failures.length ? `${report.failures.length} failure(s)` : "all browser checks passed");
process.exit(report.failures.length ? 1 : 0);

// ------------------------------------------------------------------------------------------------------------------

/** Differences between a workflow file and the frontend's re-save of it, in what the canvas stores. */
function compareWorkflows(file, saved) {
  const problems = [];
  const byId = new Map(saved.nodes.map((n) => [n.id, n]));
  for (const node of file.nodes) {
    const other = byId.get(node.id);
    if (!other) {
      problems.push(`node ${node.id} (${node.type}) disappeared on load`);
      continue;
    }
    const where = `node ${node.id} (${node.type})`;
    if (other.type !== node.type) problems.push(`${where} became ${other.type}`);
    const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
    if (!same(node.widgets_values ?? [], other.widgets_values ?? []))
      problems.push(`${where}: widgets_values ${JSON.stringify(node.widgets_values)} re-saved as ${JSON.stringify(other.widgets_values)}`);
    const slots = (n) => (n.inputs ?? []).map((i) => [i.name, i.type, i.widget?.name ?? null, i.link ?? null]);
    if (!same(slots(node), slots(other)))
      problems.push(`${where}: inputs ${JSON.stringify(slots(node))} re-saved as ${JSON.stringify(slots(other))}`);
    const outs = (n) => (n.outputs ?? []).map((o) => [o.name, o.type, [...(o.links ?? [])].sort()]);
    if (!same(outs(node), outs(other)))
      problems.push(`${where}: outputs ${JSON.stringify(outs(node))} re-saved as ${JSON.stringify(outs(other))}`);
  }
  if (saved.nodes.length !== file.nodes.length) problems.push(`${file.nodes.length} nodes re-saved as ${saved.nodes.length}`);
  const links = (w) => JSON.stringify([...w.links].map((l) => l.slice(0, 6)).sort((a, b) => a[0] - b[0]));
  if (links(file) !== links(saved)) problems.push(`links ${links(file)} re-saved as ${links(saved)}`);
  return problems;
}

/** Shows the whole graph as large as the window allows (the frontend's own fit leaves wide margins). */
async function fitGraph(page) {
  await page.evaluate(() => {
    const canvas = window.app.canvas;
    const nodes = window.app.graph.nodes;
    const left = Math.min(...nodes.map((n) => n.pos[0]));
    const top = Math.min(...nodes.map((n) => n.pos[1] - 30));
    const right = Math.max(...nodes.map((n) => n.pos[0] + n.size[0]));
    const bottom = Math.max(...nodes.map((n) => n.pos[1] + n.size[1]));
    const width = canvas.canvas.clientWidth;
    const height = canvas.canvas.clientHeight - 80; // the top bar covers the canvas
    const scale = Math.min((width - 40) / (right - left), (height - 40) / (bottom - top), 1);
    canvas.ds.scale = scale;
    canvas.ds.offset = [(width / scale - (right - left)) / 2 - left, (height / scale - (bottom - top)) / 2 - top + 80 / scale];
    canvas.setDirty(true, true);
  });
  await page.waitForTimeout(500);
}

/** Texts of the toast messages on screen; closes them. */
async function takeToasts(page) {
  const messages = page.locator(".p-toast-message");
  const texts = (await messages.allInnerTexts()).map((t) => t.replace(/\s+/g, " ").trim());
  for (const button of await page.locator(".p-toast-message .p-toast-close-button").all()) {
    await button.click().catch(() => {});
  }
  return texts;
}

/** The editor's document of a saved keyframes string (throws on invalid JSON: the saved text must stay valid). */
function docOf(text) {
  const parsed = parseKeyframes(text);
  if (!parsed.ok) throw new Error(`saved keyframes are invalid: ${parsed.error}\n${text}`);
  return parsed.doc;
}

/** The keyframes JSON string stored in the keyframe node's widget, as the saved workflow has it. */
async function savedKeyframes(page, nodeId) {
  return page.evaluate((id) => {
    const node = window.app.graph.serialize().nodes.find((n) => n.id === id);
    const index = window.app.graph.getNodeById(id).widgets.filter((w) => w.serialize !== false)
      .findIndex((w) => w.name === "keyframes");
    return node.widgets_values[index];
  }, nodeId);
}

/**
 * Drags a keyframe on the editor canvas with the real mouse and checks the saved workflow JSON: the dragged
 * channel of that keyframe moves by the amount the pointer moved (in plot units), nothing else changes. Then a
 * double click on empty plot adds a keyframe and a double click on a handle deletes one.
 */
async function exerciseKeyframeEditor(page, where) {
  const result = {};
  const nodeId = await page.evaluate(() => window.app.graph.nodes.find((n) => n.type === "Audio2HeadPoseKeyframes").id);
  // Centre the node so its DOM widgets are on screen at a readable zoom.
  await page.evaluate((id) => {
    const node = window.app.graph.getNodeById(id);
    const canvas = window.app.canvas;
    canvas.ds.scale = 1;
    canvas.ds.offset = [-node.pos[0] + 200, -node.pos[1] + 80];
    canvas.setDirty(true, true);
  }, nodeId);
  await page.waitForTimeout(500);

  const before = docOf(await savedKeyframes(page, nodeId));
  const editor = page.locator("canvas.a2h-pose-editor").first();
  await editor.waitFor({ state: "visible", timeout: 10_000 });
  // Where keyframe 1's yaw handle is, in page pixels (the editor exposes its layout for tests and tools).
  const target = await page.evaluate((id) => {
    const widget = window.app.graph.getNodeById(id).widgets.find((w) => w.name === "pose_editor");
    return widget.a2hHandle(1, "yaw");
  }, nodeId);
  if (!target) {
    fail(where, "the editor reports no handle for keyframe 1 / yaw");
    return result;
  }
  const box = await editor.boundingBox();
  const scale = box.width / target.canvasWidth;
  const x = box.x + target.x * scale;
  const y = box.y + target.y * scale;
  const dy = -30; // 30 CSS pixels up
  await page.mouse.move(x, y);
  await page.mouse.down();
  for (let step = 1; step <= 5; step++) await page.mouse.move(x, y + (dy * step) / 5);
  await page.mouse.up();
  await page.waitForTimeout(300);

  const after = docOf(await savedKeyframes(page, nodeId));
  // What the workflow tab would save (the change tracker's state) has the edit too, and the tab shows "modified".
  const tracked = await page.evaluate((id) => {
    const workflow = window.app.extensionManager.workflow.activeWorkflow;
    const node = workflow.changeTracker.activeState.nodes.find((n) => n.id === id);
    return { modified: workflow.isModified, keyframes: node.widgets_values[0] };
  }, nodeId);
  result.tab_modified = tracked.modified;
  if (!tracked.modified) fail(where, "the workflow tab is not marked modified after the drag");
  if (JSON.stringify(docOf(tracked.keyframes)) !== JSON.stringify(after))
    fail(where, "the workflow tab's saved state does not hold the dragged keyframes");
  const expectedDelta = (-dy / scale) * target.unitsPerPixel;
  result.drag = { before: target.value, after: null, expected_delta: expectedDelta };
  const check = describeKeyframeChange(before, after);
  result.drag.change = check;
  if (!check || check.length !== 1 || check[0].index !== 1 || check[0].channel !== "yaw")
    fail(where, `dragging keyframe 1 / yaw changed ${JSON.stringify(check)} in the saved JSON`);
  else {
    result.drag.after = check[0].after;
    const delta = check[0].after - check[0].before;
    if (Math.abs(delta - expectedDelta) > Math.abs(expectedDelta) * 0.15 + 0.05)
      fail(where, `yaw moved by ${delta.toFixed(3)}, the pointer by ${expectedDelta.toFixed(3)}`);
  }

  // Add: double click on the plot half-way between keyframes 0 and 1, below the curves.
  const gap = await page.evaluate((id) => {
    const widget = window.app.graph.getNodeById(id).widgets.find((w) => w.name === "pose_editor");
    return widget.a2hEmptySpot();
  }, nodeId);
  await page.mouse.dblclick(box.x + gap.x * scale, box.y + gap.y * scale);
  await page.waitForTimeout(300);
  const added = docOf(await savedKeyframes(page, nodeId));
  result.count_before = keyframeCount(after);
  result.count_added = keyframeCount(added);
  if (result.count_added !== result.count_before + 1) fail(where, `double click added ${result.count_added - result.count_before} keyframes`);

  // Delete: double click on keyframe 1's yaw handle.
  const handle = await page.evaluate((id) => {
    const widget = window.app.graph.getNodeById(id).widgets.find((w) => w.name === "pose_editor");
    return widget.a2hHandle(1, "yaw");
  }, nodeId);
  await page.mouse.dblclick(box.x + handle.x * scale, box.y + handle.y * scale);
  await page.waitForTimeout(300);
  const deleted = docOf(await savedKeyframes(page, nodeId));
  result.count_deleted = keyframeCount(deleted);
  if (result.count_deleted !== result.count_added - 1) fail(where, "double click on a handle did not delete it");

  // Typing in the JSON box moves the plot: set keyframe 1's yaw to -5 in the text.
  const textarea = await page.evaluateHandle(
    (id) => window.app.graph.getNodeById(id).widgets.find((w) => w.name === "keyframes").element,
    nodeId,
  );
  const edited = { ...deleted, keyframes: deleted.keyframes.map((k, i) => (i === 1 ? { ...k, yaw: -5 } : k)) };
  await textarea.fill(serializeKeyframes(edited));
  await page.waitForTimeout(300);
  const moved = await page.evaluate((id) => {
    const widget = window.app.graph.getNodeById(id).widgets.find((w) => w.name === "pose_editor");
    return widget.a2hHandle(1, "yaw");
  }, nodeId);
  result.typed_yaw = moved?.value;
  if (moved?.value !== -5) fail(where, `after typing yaw -5 in the JSON the plot shows ${moved?.value}`);
  return result;
}

/** Queues the loaded workflow as the Run button does and waits for its result in /history. */
async function runWorkflow(page, where, timeoutSeconds) {
  const queued = await page.evaluate(async () => {
    const api = window.comfyAPI.api.api;
    const prompt = await window.app.graphToPrompt();
    try {
      return await api.queuePrompt(0, prompt);
    } catch (error) {
      return { error: String(error?.message ?? error), response: error?.response ?? null };
    }
  });
  if (!queued?.prompt_id) {
    fail(where, `queueing failed: ${JSON.stringify(queued).slice(0, 2000)}`);
    return { queued };
  }
  const started = Date.now();
  while (Date.now() - started < timeoutSeconds * 1000) {
    const history = await page.evaluate(async (id) => {
      const response = await fetch(`/api/history/${id}`);
      return (await response.json())[id] ?? null;
    }, queued.prompt_id);
    if (history?.status?.completed || history?.status?.status_str === "error") {
      const seconds = (Date.now() - started) / 1000;
      const videos = Object.values(history.outputs ?? {}).flatMap((o) => [...(o.images ?? []), ...(o.videos ?? [])])
        .filter((f) => /\.mp4$/.test(f.filename ?? ""));
      const poseNodes = Object.entries(history.outputs ?? {}).filter(([, o]) => o.a2h_pose).map(([id]) => id);
      if (history.status.status_str !== "success") {
        const error = history.status.messages.find(([kind]) => kind === "execution_error");
        fail(where, `run failed: ${JSON.stringify(error?.[1] ?? history.status).slice(0, 1500)}`);
      } else if (!videos.length) fail(where, "run finished without an MP4 output");
      await page.waitForTimeout(500);
      return { seconds, status: history.status.status_str, videos: videos.map((v) => v.filename), pose_nodes: poseNodes };
    }
    await page.waitForTimeout(1000);
  }
  fail(where, `run did not finish in ${timeoutSeconds} s`);
  return { timeout: true };
}
