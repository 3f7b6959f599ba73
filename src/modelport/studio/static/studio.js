// modelport Studio: the small scripts behind the server-rendered pages. Changes go through the control plane
// API (/studio/api/v1) with the session cookie and the page's CSRF token; the page's state, plots and log tails
// poll while the page is visible.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));
  const POLL_MS = 5000;
  const MASK = "••••••••••••••••";

  // --- talking to the control plane ------------------------------------------------------------------------------
  // The banner says when the control plane cannot be reached (stopped, restarted elsewhere) or fails (5xx); the
  // next answer that works clears it. A 401 (the session ended) goes to the sign-in page.
  const banner = $("#connection");
  function connected(ok) {
    const text = ok ? "" : "Lost the connection to the control plane — retrying. If it was restarted, " +
      "'modelport studio' prints its address.";
    if (banner && banner.textContent !== text) banner.textContent = text;
  }
  let signingIn = false;
  function signIn() {
    if (signingIn) return;
    signingIn = true;
    location.assign("/studio/login?next=" + encodeURIComponent(location.pathname));
  }

  // The parsed JSON answer of ``method path``; an Error (with ``status`` when the control plane answered) else.
  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf, Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      connected(false);
      throw new Error("The control plane cannot be reached.");
    }
    connected(response.status < 500);
    if (response.status === 401) signIn();
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (err) { data = { message: text }; }
    if (!response.ok) {
      const error = new Error((data && data.message) || response.status + " " + response.statusText);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  // Runs ``poll`` now and ``ms`` after each run ends (one run at a time), skipping runs while the page is hidden;
  // again at once when the page is shown.
  function every(ms, poll) {
    let timer = null, running = false;
    async function run() {
      clearTimeout(timer);
      if (running) return;
      running = true;
      try { if (!document.hidden) await poll(); } catch (err) { /* the banner or the poll says what failed */ }
      running = false;
      timer = setTimeout(run, ms);
    }
    run();
    document.addEventListener("visibilitychange", () => { if (!document.hidden) run(); });
  }

  function say(id, text, kind) {
    const box = document.getElementById(id);
    if (!box) return;
    box.textContent = text;
    box.className = "message" + (kind ? " " + kind : "");
  }

  // Runs a change, showing progress and its error (the API's own message) in the message box ``id``.
  async function change(id, what, run) {
    say(id, what + "…", "busy");
    $$("button").forEach((b) => { b.disabled = true; });
    try {
      await run();
      return true;
    } catch (err) {
      say(id, err.message, "error");
      return false;
    } finally {
      $$("button").forEach((b) => { b.disabled = false; });
    }
  }

  const fmt = (x) => String(Number(Number(x).toPrecision(6)));  // as Python's '%g'

  // --- copying -------------------------------------------------------------------------------------------------
  // Copies ``text``; where the clipboard is refused, shows it (``show``) and selects ``element`` instead.
  async function copy(button, text, element, show) {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    } catch (err) {
      if (show) show();
      window.getSelection().selectAllChildren(element);
    }
  }
  $$("[data-copy]").forEach((button) => button.addEventListener("click", () => {
    const element = document.getElementById(button.dataset.copy);
    copy(button, element.textContent, element);
  }));

  // --- states and reasons, as the templates render them (_macros.html) -----------------------------------------
  function showState(badge, value) {
    badge.textContent = value || "Unknown";
    badge.className = "state state-" + (value || "Unknown").toLowerCase().replace(/ /g, "-");
  }
  // The reason in ``cell``: its first line, the rest in a <details>; left alone when unchanged (an open one stays).
  function showReason(cell, text) {
    const trimmed = (text || "").trim();
    const lines = trimmed ? trimmed.split(/\r\n|\r|\n/) : [];
    const box = $(".reason", cell), pre = box && $("pre", box);
    const shown = box ? $(".reason-first", box).textContent + (pre ? "\n" + pre.textContent : "") : "";
    if (shown === lines.join("\n")) return;
    if (box) box.remove();
    if (!lines.length) return;
    const div = document.createElement("div");
    div.className = "reason";
    const first = div.appendChild(document.createElement("span"));
    first.className = "reason-first";
    first.textContent = lines[0];
    if (lines.length > 1) {
      const details = div.appendChild(document.createElement("details"));
      details.appendChild(document.createElement("summary")).textContent =
        (lines.length - 1) + (lines.length > 2 ? " more lines" : " more line");
      details.appendChild(document.createElement("pre")).textContent = lines.slice(1).join("\n");
    }
    cell.appendChild(div);
  }

  // --- the service page ----------------------------------------------------------------------------------------
  const service = $("#service");
  if (service) {
    const name = service.dataset.name;
    const base = "/studio/api/v1/services/" + encodeURIComponent(name);
    const done = () => location.reload();
    const rows = $$("#traffic-form tr[data-version]");
    const isEndpoint = service.dataset.kind === "endpoint";
    const input = (kind, version) => document.getElementById(kind + "-" + version);

    // keys: each Reveal shows (and Hide masks) its own key; Copy copies it without showing it
    function showKey(which, value) {
      $("#key-" + which).textContent = value === null ? MASK : value;
      $("#reveal-" + which).textContent = value === null ? "Reveal" : "Hide";
    }
    $$('[data-action="reveal-key"]').forEach((b) => b.addEventListener("click", () => {
      const which = b.dataset.which;
      if (b.textContent === "Hide") { showKey(which, null); return; }
      change("keys-message", "Reading the " + which + " key", async () => {
        showKey(which, (await api("GET", base + "/keys"))[which + "Key"]);
        say("keys-message", "");
      });
    }));
    $$('[data-action="copy-key"]').forEach((b) => b.addEventListener("click", () => {
      const which = b.dataset.which;
      change("keys-message", "Reading the " + which + " key", async () => {
        const key = (await api("GET", base + "/keys"))[which + "Key"];
        say("keys-message", "");
        copy(b, key, $("#key-" + which), () => showKey(which, key));
      });
    }));
    $$('[data-action="regenerate-key"]').forEach((b) => b.addEventListener("click", () => {
      const which = b.dataset.which;
      if (!confirm("Regenerate the " + which + " key of " + name + "? Callers using the old key will be refused.")) return;
      change("keys-message", "Regenerating the " + which + " key", async () => {
        showKey(which, (await api("POST", base + "/keys", { key_type: which }))[which + "Key"]);
        say("keys-message", "The " + which + " key was replaced; the old one is refused.", "ok");
      });
    }));

    // token: Get a token shows a new one; Copy copies the one shown (getting one first if none is)
    let token = null;
    async function getToken() {
      const answer = await api("GET", base + "/token");
      token = answer.accessToken;
      $("#access-token").textContent = token;
      say("token-message", "Valid until " + new Date(answer.expiryOn * 1000).toLocaleString() + ".", "ok");
    }
    const tokenButton = $('[data-action="get-token"]');
    if (tokenButton) tokenButton.addEventListener("click", () => change("token-message", "Getting a token", getToken));
    const copyToken = $('[data-action="copy-token"]');
    if (copyToken) copyToken.addEventListener("click", async () => {
      if (token === null && !(await change("token-message", "Getting a token", getToken))) return;
      copy(copyToken, token, $("#access-token"));
    });

    // the traffic form: Apply sends only what was changed on this page (a change made elsewhere since the page
    // loaded stays), and the preview shows the split Apply would make (traffic.split's rule)
    const trafficForm = $("#traffic-form");
    if (trafficForm && isEndpoint) {
      const number = (field) => (field.value.trim() === "" ? NaN : Number(field.value));

      // What the form changes: version -> the settings that differ from the page as loaded. Throws for a
      // percentile that is not a number.
      function edits() {
        const versions = {};
        for (const row of rows) {
          const version = row.dataset.version;
          const traffic = input("traffic", version), mirror = input("mirror", version);
          const settings = {};
          for (const [field, key] of [[traffic, "traffic_percentile"], [mirror, "mirror_percentile"]]) {
            if (Number.isNaN(number(field))) {
              throw new Error("The traffic and mirror percentiles of " + version + " must be numbers from 0 to 100.");
            }
            if (number(field) !== Number(field.defaultValue)) settings[key] = number(field);
          }
          if (input("default", version).checked && !input("default", version).defaultChecked) settings.is_default = true;
          if (input("control", version).checked && !input("control", version).defaultChecked) {
            settings.is_control_version_type = true;
          }
          if (Object.keys(settings).length) versions[version] = settings;
        }
        return versions;
      }

      // spec/traffic.py's split(): each version that is not mirrored gets its traffic percentile, the default
      // also what their sum leaves below 100; mirrored versions get copies instead.
      const preview = $("#traffic-preview");
      function showPreview() {
        const shares = {}, copies = [], problems = [];
        let total = 0, fallback = null;
        for (const row of rows) {
          const version = row.dataset.version;
          const traffic = number(input("traffic", version)), mirror = number(input("mirror", version));
          if (Number.isNaN(traffic) || Number.isNaN(mirror)) {
            preview.textContent = "After Apply: " + version + "'s percentiles must be numbers.";
            return;
          }
          for (const [value, what] of [[traffic, "traffic"], [mirror, "mirror"]]) {
            if (value < 0 || value > 100) problems.push(version + "'s " + what + " percentile must be from 0 to 100");
          }
          total += traffic;
          if (input("default", version).checked) fallback = version;
          if (mirror) {
            copies.push(version + " gets copies of " + fmt(mirror) + "% of requests");
            if (traffic || input("default", version).checked) {
              problems.push(version + " is mirrored, so it takes no share: set its traffic to 0 and pick another default");
            }
          } else {
            shares[version] = traffic;
          }
        }
        if (fallback in shares) shares[fallback] += 100 - Object.values(shares).reduce((a, b) => a + b, 0);
        if (total > 100) problems.unshift("the traffic percentiles add up to " + fmt(total) + ", over 100");
        preview.textContent = problems.length  // a refused change makes no split: say why instead of showing one
          ? "After Apply: no change. The control plane will refuse it: " + problems.join("; ") + "."
          : "After Apply: " + Object.entries(shares).map(([v, p]) => v + " " + fmt(p) + "%").join(", ") +
            (copies.length ? "; " + copies.join("; ") : "");
        preview.classList.toggle("error", problems.length > 0);
      }
      trafficForm.addEventListener("input", showPreview);
      trafficForm.addEventListener("change", showPreview);
      showPreview();

      trafficForm.addEventListener("submit", (event) => {
        event.preventDefault();
        let versions;
        try { versions = edits(); } catch (err) { say("traffic-message", err.message, "error"); return; }
        if (!Object.keys(versions).length) {
          say("traffic-message", "Nothing changed: edit a percentile or pick another default or control version first.", "error");
          return;
        }
        change("traffic-message", "Applying the traffic", async () => { await api("PUT", base + "/traffic", { versions }); done(); });
      });
      $$('[data-action="promote"]').forEach((b) => b.addEventListener("click", () =>
        change("traffic-message", "Promoting " + b.dataset.version, async () => {
          await api("POST", base + "/promote", { version_name: b.dataset.version }); done();
        })));
      $$('[data-action="delete-version"]').forEach((b) => b.addEventListener("click", () => {
        if (!confirm("Delete version " + b.dataset.version + " of " + name + "?")) return;
        change("traffic-message", "Deleting " + b.dataset.version, async () => {
          await api("DELETE", base + "/versions/" + encodeURIComponent(b.dataset.version)); done();
        });
      }));
      $('[data-action="rollback"]').addEventListener("click", () =>
        change("traffic-message", "Rolling back", async () => { await api("POST", base + "/rollback"); done(); }));
      $("#add-version-form").addEventListener("submit", (event) => {
        event.preventDefault();
        const version = $("#new-version-name").value.trim();
        const traffic = parseFloat($("#new-version-traffic").value || "0");
        if (!version) { say("add-version-message", "Name the new version.", "error"); return; }
        change("add-version-message", "Adding " + version + " (starting its replicas)", async () => {
          await api("POST", base + "/versions", { version_name: version, traffic_percentile: traffic }); done();
        });
      });
    }

    $("#delete-service-form").addEventListener("submit", (event) => {
      event.preventDefault();
      if ($("#confirm-name").value !== name) {
        say("delete-message", "Type " + name + " exactly to delete it.", "error");
        return;
      }
      change("delete-message", "Deleting " + name, async () => { await api("DELETE", base); location.assign("/studio/services"); });
    });

    // The service as the control plane sees it now: states, reasons, the split and replicas refreshed in place
    // (never the form's inputs); a version added or deleted elsewhere, or traffic changed there, is only noted.
    const notice = $("#page-notice");
    function note(text, href, linkText) {
      notice.hidden = !text;
      if (notice.firstChild && notice.firstChild.textContent === text) return;
      notice.textContent = "";
      if (!text) return;
      notice.appendChild(document.createTextNode(text));
      const link = notice.appendChild(document.createElement("a"));
      link.href = href || location.pathname;
      link.textContent = linkText || "Reload to see it";
      notice.appendChild(document.createTextNode("."));
    }
    function changedElsewhere(view) {
      const names = rows.map((row) => row.dataset.version);
      const added = Object.keys(view.versions).filter((v) => !names.includes(v));
      const gone = names.filter((v) => !(v in view.versions));
      const moved = isEndpoint ? names.filter((v) => v in view.versions && (
        fmt(view.versions[v].traffic_percentile) !== fmt(input("traffic", v).defaultValue) ||
        fmt(view.versions[v].mirror_percentile) !== fmt(input("mirror", v).defaultValue) ||
        view.versions[v].is_default !== input("default", v).defaultChecked ||
        view.versions[v].is_control !== input("control", v).defaultChecked)) : [];
      const parts = [];
      if (added.length) parts.push("added " + added.join(", "));
      if (gone.length) parts.push("deleted " + gone.join(", "));
      if (moved.length) parts.push("changed the traffic settings of " + moved.join(", "));
      return parts.length ? "Since this page loaded, someone " + parts.join("; ") +
        (moved.length ? " (Apply sends only what you change here). " : ". ") : "";
    }
    const onPage = Object.fromEntries(rows.map((row) =>
      [row.dataset.version, { mirror_percentile: Number(row.dataset.mirror) }]));
    const plots = window.StudioPlots && window.StudioPlots.start($("#plots"), $("#plot-version"), $("#observed-split"),
      onPage, (path) => api("GET", path));
    every(POLL_MS, async () => {
      let view;
      try {
        view = await api("GET", base);
      } catch (err) {
        if (err.status === 404) note(name + " was deleted elsewhere. ", "/studio/services", "Back to the list");
        return;
      }
      showState($("#service-state .state"), view.state);
      showReason($("#service-state"), view.error || (view.status || {}).reason);
      for (const row of rows) {
        const v = view.versions[row.dataset.version];
        if (!v) continue;
        showState($(".version-state .state", row), v.state);
        showReason($(".version-state", row), v.reason);
        $(".effective", row).textContent = fmt(v.effective_percentile) + "%";
        $(".replicas", row).textContent = (v.ready_replicas ?? "?") + " / " + (v.replicas ?? "?");
        $(".replica-set", row).textContent = v.replica_set;
      }
      note(changedElsewhere(view));
      if (plots) plots.versions(view.versions);
    });

    // live log tail of each version, while its panel is open
    $$("details.log-tail").forEach((panel) => {
      const pre = $("pre", panel);
      const path = base + "/logs?num_lines=200&version=" + encodeURIComponent(panel.dataset.version);
      let timer = null;
      async function poll() {
        try {
          const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
          pre.textContent = (await api("GET", path)).logs || "(no log lines yet)";
          if (atEnd) pre.scrollTop = pre.scrollHeight;
        } catch (err) {
          if (err.status && err.status < 500) pre.textContent = err.message;  // else the banner says it
        }
      }
      panel.addEventListener("toggle", () => {
        clearInterval(timer);
        if (panel.open) { poll(); timer = setInterval(() => { if (!document.hidden) poll(); }, 3000); }
      });
    });
  }

  // --- the environment page: its build state and log, live --------------------------------------------------------
  const buildLog = $("#build-log");
  if (buildLog) {
    every(3000, async () => {
      const build = await api("GET", buildLog.dataset.poll);
      showState($("#build-state .state"), build.state);
      const atEnd = buildLog.scrollTop + buildLog.clientHeight >= buildLog.scrollHeight - 4;
      buildLog.textContent = build.log || "(no build yet)";
      if (atEnd) buildLog.scrollTop = buildLog.scrollHeight;
    });
  }
})();
