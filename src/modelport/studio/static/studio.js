// modelport Studio: the small scripts behind the server-rendered pages. Changes go through the control plane
// API (/api/v1) with the session cookie and the page's CSRF token; plots and log tails poll while the page is open.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));

  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf, Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (err) { data = { message: text }; }
    if (!response.ok) {
      if (response.status === 401) { location.assign("/studio/login?next=" + encodeURIComponent(location.pathname)); }
      throw new Error((data && data.message) || response.status + " " + response.statusText);
    }
    return data;
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

  // --- copy buttons --------------------------------------------------------------------------------------------
  $$("[data-copy]").forEach((button) => button.addEventListener("click", async () => {
    const text = document.getElementById(button.dataset.copy).textContent;
    try { await navigator.clipboard.writeText(text); button.textContent = "Copied"; }
    catch (err) { window.getSelection().selectAllChildren(document.getElementById(button.dataset.copy)); }
  }));

  // --- the service page ----------------------------------------------------------------------------------------
  const service = $("#service");
  if (service) {
    const name = service.dataset.name;
    const base = "/studio/api/v1/services/" + encodeURIComponent(name);
    const done = () => location.reload();

    function showKeys(keys) {
      $("#key-primary").textContent = keys.primaryKey;
      $("#key-secondary").textContent = keys.secondaryKey;
    }
    $$('[data-action="reveal-key"]').forEach((b) => b.addEventListener("click", () =>
      change("keys-message", "Reading the keys", async () => { showKeys(await api("GET", base + "/keys")); say("keys-message", ""); })));
    $$('[data-action="regenerate-key"]').forEach((b) => b.addEventListener("click", () => {
      const which = b.dataset.which;
      if (!confirm("Regenerate the " + which + " key of " + name + "? Callers using the old key will be refused.")) return;
      change("keys-message", "Regenerating the " + which + " key", async () => {
        showKeys(await api("POST", base + "/keys", { key_type: which }));
        say("keys-message", "The " + which + " key was replaced; the old one is refused.", "ok");
      });
    }));
    const tokenButton = $('[data-action="get-token"]');
    if (tokenButton) tokenButton.addEventListener("click", () => change("token-message", "Getting a token", async () => {
      const token = await api("GET", base + "/token");
      $("#access-token").textContent = token.accessToken;
      say("token-message", "Valid until " + new Date(token.expiryOn * 1000).toLocaleString() + ".", "ok");
    }));

    const trafficForm = $("#traffic-form");
    if (trafficForm && service.dataset.kind === "endpoint") {
      trafficForm.addEventListener("submit", (event) => {
        event.preventDefault();
        const versions = {};
        for (const row of $$("tr[data-version]", trafficForm)) {
          const version = row.dataset.version;
          const traffic = parseFloat($('[name="traffic:' + version + '"]').value);
          const mirror = parseFloat($('[name="mirror:' + version + '"]').value);
          if (Number.isNaN(traffic) || Number.isNaN(mirror)) {
            say("traffic-message", "The traffic and mirror percentiles of " + version + " must be numbers from 0 to 100.", "error");
            return;
          }
          versions[version] = { traffic_percentile: traffic, mirror_percentile: mirror };
          if ($('#default-' + version).checked) versions[version].is_default = true;
          if ($('#control-' + version).checked) versions[version].is_control_version_type = true;
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
        } catch (err) { pre.textContent = err.message; }
      }
      panel.addEventListener("toggle", () => {
        clearInterval(timer);
        if (panel.open) { poll(); timer = setInterval(poll, 3000); }
      });
    });

    if (window.StudioPlots) window.StudioPlots.start($("#plots"), $("#plot-version"), $("#observed-split"));
  }

  // --- the environment page: its build state and log, live --------------------------------------------------------
  const buildLog = $("#build-log");
  if (buildLog) {
    setInterval(async () => {
      if (document.hidden) return;
      try {
        const build = await api("GET", buildLog.dataset.poll);
        const state = $("#build-state .state");
        state.textContent = build.state;
        state.className = "state state-" + build.state.toLowerCase().replace(/ /g, "-");
        const atEnd = buildLog.scrollTop + buildLog.clientHeight >= buildLog.scrollHeight - 4;
        buildLog.textContent = build.log || "(no build yet)";
        if (atEnd) buildLog.scrollTop = buildLog.scrollHeight;
      } catch (err) { /* the next poll tries again */ }
    }, 3000);
  }
})();
