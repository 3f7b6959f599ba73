// modelport Studio: live plots of an endpoint's figures (uPlot). The control plane keeps the last hour
// (GET /studio/api/services/<name>/history); this loads it once, then asks every few seconds for what is new.
// Only the versions the endpoint has now are plotted (studio.js passes them in as it refreshes the page).
"use strict";
window.StudioPlots = (function () {
  const PALETTE = ["#1f5fbf", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#0b7285", "#5c940d", "#a61e4d", "#364fc7",
    "#e67700"];
  const CLASS_COLOURS = { "2xx": "#2b8a3e", "4xx": "#e67700", "5xx": "#c92a2a" };
  const WINDOW_S = 3600;
  const SPLIT_S = 30;
  const POLL_MS = 5000;
  // canvas dash pattern and the legend marker's border style drawn for it
  const DOTTED = [2, 4], DASHED = [8, 4];
  const markerStyle = (dash) => (dash === DOTTED ? "dotted" : dash === DASHED ? "dashed" : "solid");

  // Each version's colour comes from its name, so it is the same on every page and whatever other versions there
  // are; two names hashed to the same colour: the later one (by name) takes the next free colour.
  function colours(names) {
    const taken = {}, used = new Set();
    for (const name of names.slice().sort()) {
      let hash = 0;
      for (const c of name) hash = (hash * 31 + c.codePointAt(0)) >>> 0;
      let i = hash % PALETTE.length;
      for (let n = 0; n < PALETTE.length && used.has(PALETTE[i]); n++) i = (i + 1) % PALETTE.length;
      used.add(PALETTE[i]);
      taken[name] = PALETTE[i];
    }
    return taken;
  }

  function line(label, stroke, dash) {
    return { label, stroke, width: 2, dash, spanGaps: false, value: (u, v) => (v == null ? "–" : +v.toFixed(2)) };
  }

  // Each plot: its series (labels, colours, dashes) and, for each history point, their values.
  function layouts(names, shown) {
    const colour = colours(names);
    const sumClass = (p, cls) => shown.reduce((sum, v) => sum + (((p.versions[v] || {}).status || {})[cls] || 0), 0);
    const pick = (field, v) => (p) => (p.versions[v] ? p.versions[v][field] : null);
    const each = (fields) => shown.flatMap((v) => fields.map(([label, field, dash]) =>
      ({ series: line(v + " " + label, colour[v], dash), value: pick(field, v) })));
    return {
      rps: shown.map((v) => ({ series: line(v, colour[v]), value: pick("rps", v) })),
      latency: each([["p50", "p50_ms", DOTTED], ["p95", "p95_ms", DASHED], ["p99", "p99_ms", undefined]]),
      status: ["2xx", "4xx", "5xx"].map((cls) => ({ series: line(cls, CLASS_COLOURS[cls]), value: (p) => sumClass(p, cls) })),
      replicas: each([["desired", "replicas", DASHED], ["ready", "ready_replicas", undefined]]),
      utilization: each([["utilisation", "utilization", undefined], ["target", "target_utilization", DASHED]]),
    };
  }

  // ``versions``: the endpoint's versions now ({name: {mirror_percentile, ...}}); ``get(path)``: studio.js's
  // api GET (it shows the lost-connection banner and goes to sign in on a 401).
  function start(section, select, splitBox, versions, get) {
    const url = section.dataset.history;
    let points = [];
    let charts = {};
    let shapeKey = "";
    let current = versions;

    const names = () => Object.keys(current).sort();

    // The "Show" choices: all versions, then each version the endpoint has now.
    function fillSelect() {
      const wanted = ["", ...names()];
      const have = Array.from(select.options).map((o) => o.value);
      if (wanted.join("\n") === have.join("\n")) return;
      const chosen = wanted.includes(select.value) ? select.value : "";
      select.replaceChildren(...wanted.map((v) => new Option(v || "all versions", v)));
      select.value = chosen;
    }

    function draw() {
      const all = names();
      const shown = select.value ? [select.value] : all;
      const plots = layouts(all, shown);
      const xs = points.map((p) => p.t);
      const key = select.value + "|" + all.join(",");
      if (key !== shapeKey) {
        Object.values(charts).forEach((c) => c.destroy());
        charts = {};
        shapeKey = key;
      }
      plotBoxes(section).forEach((box) => {
        const layout = plots[box.dataset.plot];
        const data = [xs, ...layout.map((s) => points.map(s.value))];
        if (!charts[box.dataset.plot]) {
          const dashes = [null, ...layout.map((s) => s.series.dash)];
          charts[box.dataset.plot] = new uPlot({
            width: Math.max(280, box.clientWidth), height: 200, series: [{}, ...layout.map((s) => s.series)],
            scales: { x: { time: true } }, axes: [{}, { size: 50 }],
            legend: { live: true, markers: { width: 3, dash: (u, i) => markerStyle(dashes[i]) } },
          }, data, box);
        } else {
          charts[box.dataset.plot].setData(data);
        }
      });
      showSplit(all);
    }

    // The share of the clients' requests each version that takes traffic answered over the last SPLIT_S seconds;
    // mirrored versions (which get copies) apart, as a share of those requests.
    function showSplit(all) {
      const now = points.length ? points[points.length - 1].t : 0;
      const recent = points.filter((p) => p.t > now - SPLIT_S);
      const answered = (v) => recent.reduce((sum, p) => sum + ((p.versions[v] || {}).rps || 0), 0);
      const serving = all.filter((v) => !current[v].mirror_percentile);
      const mirrored = all.filter((v) => current[v].mirror_percentile);
      const total = serving.reduce((sum, v) => sum + answered(v), 0);
      const share = (v) => answered(v) / total;
      const pc = (v) => Math.round(100 * share(v)) + "%";
      splitBox.textContent = total > 0
        ? "Observed split, last " + SPLIT_S + " s: " + serving.map((v) => v + " " + pc(v)).join(", ") +
          mirrored.map((v) => "; " + v + " gets copies of " + pc(v) + " of requests").join("")
        : "No requests in the last " + SPLIT_S + " s.";
      splitBox.dataset.split = JSON.stringify(total > 0 ? Object.fromEntries(serving.map((v) => [v, share(v)])) : {});
      splitBox.dataset.mirrored = JSON.stringify(total > 0 ? Object.fromEntries(mirrored.map((v) => [v, share(v)])) : {});
    }

    async function poll() {
      if (document.hidden) return;
      const since = points.length ? "?since=" + points[points.length - 1].t : "";
      let history;
      try { history = await get(url + since); } catch (err) { return; }  // the banner says so; the next poll retries
      points = points.concat(history.points).filter((p) => p.t > history.now - WINDOW_S);
      draw();
    }

    select.addEventListener("change", draw);
    window.addEventListener("resize", () => Object.entries(charts).forEach(([name, chart]) => {
      const box = section.querySelector('[data-plot="' + name + '"]');
      chart.setSize({ width: Math.max(280, box.clientWidth), height: 200 });
    }));
    fillSelect();
    poll();
    setInterval(poll, POLL_MS);

    return {
      // The endpoint's versions now: the plots, the split and the "Show" choices follow them.
      versions(now) {
        const shape = (vs) => JSON.stringify(Object.keys(vs).sort().map((v) => [v, vs[v].mirror_percentile]));
        if (shape(now) === shape(current)) return;
        current = now;
        fillSelect();
        draw();
      },
    };
  }

  function plotBoxes(section) { return Array.from(section.querySelectorAll(".plot[data-plot]")); }

  return { start };
})();
