// fmhub charts: plotly.js (served by the hub from the plotly wheel) over JSON data islands in the page.
"use strict";

const FONT = { family: "Inter, system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: "#1f2937" };
const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
const COLORS = ["#4f46e5", "#f59e0b", "#10b981", "#ef4444", "#06b6d4", "#8b5cf6", "#84cc16", "#ec4899"];

function island(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

function layout(extra) {
  return Object.assign({ font: FONT, margin: { l: 56, r: 16, t: 12, b: 48 }, paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)", hoverlabel: { font: FONT } }, extra || {});
}

function draw(node, traces, extra) {
  node.replaceChildren();
  return Plotly.newPlot(node, traces, layout(extra), CONFIG);
}

function confusion(node, data) {
  const labels = data.labels, matrix = data.confusion_matrix;
  const totals = matrix.map((row) => row.reduce((a, b) => a + b, 0));
  const share = matrix.map((row, i) => row.map((n) => (totals[i] ? n / totals[i] : 0)));
  const text = matrix.map((row) => row.map(String));
  draw(node, [{
    type: "heatmap", z: share, x: labels, y: labels, text: text, texttemplate: "%{text}", customdata: matrix,
    colorscale: [[0, "#f8fafc"], [0.5, "#a5b4fc"], [1, "#3730a3"]], zmin: 0, zmax: 1, showscale: false,
    hovertemplate: "gold %{y}<br>predicted %{x}<br>%{customdata} rows (%{z:.1%} of %{y})<extra></extra>", xgap: 2, ygap: 2,
  }], {
    height: Math.max(260, 60 + 44 * labels.length), margin: { l: 110, r: 16, t: 8, b: 90 },
    xaxis: { title: { text: "predicted" }, type: "category", tickangle: -30, side: "bottom" },
    yaxis: { title: { text: "gold" }, type: "category", autorange: "reversed" },
  }).then((plot) => {
    plot.on("plotly_click", (event) => {
      const point = event.points[0];
      const url = new URL(node.dataset.pageUrl, window.location.href);
      url.searchParams.set("gold", point.y);
      url.searchParams.set("pred", point.x);
      window.fmhubLoadErrors(url.toString());
    });
  });
}

function perClass(node, data) {
  const rows = data.per_class || data.per_type;
  const names = rows.map((r) => r.label ?? r.type);
  const traces = ["precision", "recall", "f1"].map((key, i) => ({
    type: "bar", name: key, x: names, y: rows.map((r) => r[key]), marker: { color: COLORS[i] },
    hovertemplate: `%{x}<br>${key} %{y:.4f}<extra></extra>`,
  }));
  draw(node, traces, { height: 260, barmode: "group", yaxis: { range: [0, 1.05], title: { text: "score" } },
    legend: { orientation: "h", y: 1.12 }, margin: { l: 56, r: 16, t: 24, b: 70 } });
}

function calibration(node, data) {
  const bins = data.calibration.bins.filter((b) => b.count > 0);
  draw(node, [
    { type: "scatter", mode: "lines", x: [0, 1], y: [0, 1], name: "perfect", line: { dash: "dot", color: "#9ca3af" }, hoverinfo: "skip" },
    { type: "scatter", mode: "lines+markers", name: "model", x: bins.map((b) => b.confidence), y: bins.map((b) => b.accuracy),
      marker: { size: bins.map((b) => 6 + Math.min(14, Math.sqrt(b.count))), color: COLORS[0] }, line: { color: COLORS[0] },
      customdata: bins.map((b) => b.count), hovertemplate: "confidence %{x:.3f}<br>accuracy %{y:.3f}<br>%{customdata} rows<extra></extra>" },
  ], { height: 280, xaxis: { range: [0, 1.02], title: { text: "confidence" } }, yaxis: { range: [0, 1.02], title: { text: "accuracy" } },
    legend: { orientation: "h", y: 1.12 }, margin: { l: 56, r: 16, t: 24, b: 48 } });
}

function robustness(node, data) {
  const items = data.robustness;
  const keys = Object.keys(items[0]?.delta || {});
  const traces = keys.map((key, i) => ({
    // a perturbation that changed no model input has no bar: "n/a" and its note say why
    type: "bar", name: key, y: items.map((p) => (p.applicable === false ? `${p.name} (n/a)` : p.name)),
    x: items.map((p) => p.delta[key]), orientation: "h",
    marker: { color: COLORS[i] }, customdata: items.map((p) => (p.applicable === false ? p.note : p.description)),
    hovertemplate: `%{y}: %{customdata}<br>${key} change %{x:+.4f}<extra></extra>`,
  }));
  draw(node, traces, { height: 60 + 44 * items.length, barmode: "group", xaxis: { title: { text: "change from clean inputs" }, zeroline: true },
    margin: { l: 90, r: 16, t: 24, b: 48 }, legend: { orientation: "h", y: 1.15 } });
}

function slices(node, data) {
  const traces = [];
  data.slices.forEach((grouping, i) => {
    const metric = grouping.metric;
    traces.push({ type: "bar", name: `${metric} by ${grouping.by.replace("column:", "")}`, x: grouping.groups.map((g) => g.value),
      y: grouping.groups.map((g) => g.metrics[metric]), customdata: grouping.groups.map((g) => g.rows), marker: { color: COLORS[i + 2] },
      hovertemplate: `%{x}<br>${metric} %{y:.4f}<br>%{customdata} rows<extra></extra>` });
  });
  draw(node, traces, { height: 260, yaxis: { title: { text: data.slices[0].metric } }, legend: { orientation: "h", y: 1.15 },
    margin: { l: 56, r: 16, t: 24, b: 60 } });
}

function labelBars(node, counts) {
  const names = Object.keys(counts);
  draw(node, [{ type: "bar", x: names, y: names.map((n) => counts[n]), marker: { color: COLORS[0] },
    hovertemplate: "%{x}: %{y} rows<extra></extra>" }], { height: 200, yaxis: { title: { text: "rows" } }, margin: { l: 56, r: 8, t: 8, b: 48 } });
}

function curves(node, data, axis) {
  const keys = [...new Set(data.runs.flatMap((run) => Object.keys(run.series)))].sort();
  node.replaceChildren();
  if (!keys.length) { node.textContent = "No metric was logged."; node.classList.add("muted"); return; }
  keys.forEach((key) => {
    const box = document.createElement("div");
    box.className = "curve";
    const title = document.createElement("h3");
    title.textContent = key;
    const plot = document.createElement("div");
    box.append(title, plot);
    node.append(box);
    const traces = data.runs.filter((run) => run.series[key]).map((run, i) => {
      const s = run.series[key];
      const x = axis === "epoch" ? s.epoch : s.step;
      return { type: "scatter", mode: s.value.length > 1 ? "lines+markers" : "markers", name: run.id, x: x, y: s.value,
        marker: { size: 5, color: COLORS[i % COLORS.length] }, line: { color: COLORS[i % COLORS.length] },
        hovertemplate: `${run.id}<br>${axis} %{x}<br>${key} %{y:.5g}<extra></extra>` };
    });
    Plotly.newPlot(plot, traces, layout({ height: 240, showlegend: data.runs.length > 1, legend: { orientation: "h", y: 1.2 },
      xaxis: { title: { text: axis } }, margin: { l: 56, r: 12, t: data.runs.length > 1 ? 28 : 8, b: 44 } }), CONFIG);
  });
}

const KIND_COLORS = { dataset: "#10b981", model: "#4f46e5", run: "#f59e0b", evaluation: "#8b5cf6", "serve-check": "#0ea5e9",
  deployment: "#0369a1", hidden: "#9ca3af" };
const KIND_SYMBOLS = { dataset: "square", model: "circle", run: "diamond", evaluation: "triangle-up", "serve-check": "hexagon",
  deployment: "hexagon", hidden: "circle-open" };

function lineageGraph(node, data) {
  // Edges as line segments with an arrow-ish marker at the child end; nodes as one trace per kind (a legend).
  const ex = [], ey = [], mx = [], my = [], mtext = [];
  data.edges.forEach((e) => {
    ex.push(e.from[0], e.to[0], null); ey.push(e.from[1], e.to[1], null);
    mx.push(e.from[0] + (e.to[0] - e.from[0]) * 0.5); my.push(e.from[1] + (e.to[1] - e.from[1]) * 0.5); mtext.push(e.relation);
  });
  const traces = [
    { type: "scatter", mode: "lines", x: ex, y: ey, hoverinfo: "skip", showlegend: false, line: { color: "#cbd5e1", width: 1.5 } },
    { type: "scatter", mode: "text", x: mx, y: my, text: mtext, hoverinfo: "skip", showlegend: false,
      textfont: { size: 10, color: "#64748b" } },
  ];
  Object.keys(KIND_COLORS).forEach((kind) => {
    const nodes = data.nodes.filter((n) => n.kind === kind);
    if (!nodes.length) { return; }
    traces.push({ type: "scatter", mode: "markers+text", name: kind, x: nodes.map((n) => n.x), y: nodes.map((n) => n.y),
      // Labels above and below by turns along the graph, so neighbouring columns do not write over each other.
      text: nodes.map((n) => n.label), customdata: nodes.map((n) => n.url || ""),
      textposition: nodes.map((n) => (Math.round(n.x) % 2 ? "top center" : "bottom center")),
      hovertemplate: "%{text}<extra>" + kind + "</extra>", textfont: { size: 11 },
      marker: { size: nodes.map((n) => (n.root ? 20 : 14)), color: KIND_COLORS[kind], symbol: KIND_SYMBOLS[kind],
        line: { width: nodes.map((n) => (n.root ? 3 : 1)), color: "#111827" } } });
  });
  const depths = data.nodes.map((n) => n.x), spread = data.nodes.map((n) => n.y);
  const width = Math.max(...depths) - Math.min(...depths), height = Math.max(...spread) - Math.min(...spread);
  draw(node, traces, {
    height: Math.max(260, 120 + 70 * (height + 1)), showlegend: true, legend: { orientation: "h", y: 1.08 },
    xaxis: { visible: false, range: [Math.min(...depths) - 0.6, Math.min(...depths) + Math.max(width, 1) + 0.6] },
    yaxis: { visible: false, range: [Math.min(...spread) - 0.8, Math.max(...spread) + 0.6] }, margin: { l: 8, r: 8, t: 24, b: 8 },
  }).then((plot) => {
    plot.on("plotly_click", (event) => {
      const url = event.points[0].customdata;
      if (url) { window.location.href = url; }
    });
  });
}

function start() {
  if (typeof Plotly === "undefined") { return; }
  const lineage = island("lineage-data");
  const lineageNode = document.querySelector("[data-chart=lineage]");
  if (lineage && lineageNode) { lineageGraph(lineageNode, lineage); }
  const report = island("report-data");
  if (report) {
    const charts = { confusion, "per-class": perClass, calibration, robustness, slices };
    document.querySelectorAll("[data-chart]").forEach((node) => {
      const fn = charts[node.dataset.chart];
      if (fn) { fn(node, report); }
    });
  }
  const labels = island("labels-data");
  const labelNode = document.querySelector("[data-chart=labels]");
  if (labels && labelNode) { labelBars(labelNode, labels); }
  const runs = island("run-data");
  const curveNode = document.querySelector("[data-role=curves]");
  if (runs && curveNode) {
    curves(curveNode, runs, "step");
    document.querySelectorAll("[data-axis]").forEach((button) => button.addEventListener("click", () => {
      document.querySelectorAll("[data-axis]").forEach((b) => b.classList.toggle("active", b === button));
      curves(curveNode, runs, button.dataset.axis);
    }));
  }
}

if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
