// modelport Studio: live plots of an endpoint's figures (uPlot). The control plane keeps the last hour
// (GET /studio/api/services/<name>/history); this loads it once, then asks every few seconds for what is new.
"use strict";
window.StudioPlots = (function () {
  const COLOURS = ["#1f5fbf", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#0b7285"];
  const CLASS_COLOURS = { "2xx": "#2b8a3e", "4xx": "#e67700", "5xx": "#c92a2a" };
  const WINDOW_S = 3600;
  const SPLIT_S = 30;
  const POLL_MS = 5000;

  function line(label, stroke, dash) {
    return { label, stroke, width: 2, dash, spanGaps: false, value: (u, v) => (v == null ? "–" : +v.toFixed(2)) };
  }

  // Each plot: its series (labels and colours) and, for each history point, their values.
  function layouts(versions) {
    const colour = (v) => COLOURS[Math.max(0, versions.all.indexOf(v)) % COLOURS.length];
    const shown = versions.shown;
    const sumClass = (p, cls) => shown.reduce((sum, v) => sum + (((p.versions[v] || {}).status || {})[cls] || 0), 0);
    const pick = (field) => (v) => (p) => (p.versions[v] ? p.versions[v][field] : null);
    const each = (fields) => shown.flatMap((v) => fields.map(([label, field, dash]) =>
      ({ series: line(v + " " + label, colour(v), dash), value: pick(field)(v) })));
    return {
      rps: shown.map((v) => ({ series: line(v, colour(v)), value: pick("rps")(v) })),
      latency: each([["p50", "p50_ms", [2, 4]], ["p95", "p95_ms", [8, 4]], ["p99", "p99_ms", undefined]]),
      status: ["2xx", "4xx", "5xx"].map((cls) => ({ series: line(cls, CLASS_COLOURS[cls]), value: (p) => sumClass(p, cls) })),
      replicas: each([["desired", "replicas", [8, 4]], ["ready", "ready_replicas", undefined]]),
      utilization: each([["utilisation", "utilization", undefined], ["target", "target_utilization", [8, 4]]]),
    };
  }

  function start(section, select, splitBox) {
    const url = section.dataset.history;
    let points = [];
    let charts = {};
    let shapeKey = "";

    function versionsSeen() {
      const all = [];
      points.forEach((p) => Object.keys(p.versions).forEach((v) => { if (!all.includes(v)) all.push(v); }));
      return all.sort();
    }

    function draw() {
      const all = versionsSeen();
      const shown = select.value ? [select.value] : all;
      const plots = layouts({ all, shown });
      const xs = points.map((p) => p.t);
      const key = select.value + "|" + all.join(",");
      if (key !== shapeKey) {
        Object.values(charts).forEach((c) => c.destroy());
        charts = {};
        shapeKey = key;
      }
      $$plots(section).forEach((box) => {
        const layout = plots[box.dataset.plot];
        const data = [xs, ...layout.map((s) => points.map(s.value))];
        if (!charts[box.dataset.plot]) {
          charts[box.dataset.plot] = new uPlot({
            width: Math.max(280, box.clientWidth), height: 200, series: [{}, ...layout.map((s) => s.series)],
            scales: { x: { time: true } }, axes: [{}, { size: 50 }], legend: { live: true },
          }, data, box);
        } else {
          charts[box.dataset.plot].setData(data);
        }
      });
      showSplit(all);
    }

    // The share of the requests each version answered over the last SPLIT_S seconds, as text.
    function showSplit(all) {
      const now = points.length ? points[points.length - 1].t : 0;
      const recent = points.filter((p) => p.t > now - SPLIT_S);
      const answered = {};
      all.forEach((v) => { answered[v] = recent.reduce((sum, p) => sum + ((p.versions[v] || {}).rps || 0), 0); });
      const total = Object.values(answered).reduce((a, b) => a + b, 0);
      splitBox.textContent = total > 0
        ? "Observed split, last " + SPLIT_S + " s: " + all.map((v) => v + " " + Math.round(100 * answered[v] / total) + "%").join(", ")
        : "No requests in the last " + SPLIT_S + " s.";
      splitBox.dataset.split = JSON.stringify(total > 0 ? Object.fromEntries(all.map((v) => [v, answered[v] / total])) : {});
    }

    async function poll() {
      if (document.hidden) return;
      const since = points.length ? "?since=" + points[points.length - 1].t : "";
      try {
        const response = await fetch(url + since, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (!response.ok) return;
        const history = await response.json();
        points = points.concat(history.points).filter((p) => p.t > history.now - WINDOW_S);
        draw();
      } catch (err) { /* the next poll tries again */ }
    }

    select.addEventListener("change", draw);
    window.addEventListener("resize", () => Object.entries(charts).forEach(([name, chart]) => {
      const box = section.querySelector('[data-plot="' + name + '"]');
      chart.setSize({ width: Math.max(280, box.clientWidth), height: 200 });
    }));
    poll();
    setInterval(poll, POLL_MS);
  }

  function $$plots(section) { return Array.from(section.querySelectorAll(".plot[data-plot]")); }

  return { start };
})();
