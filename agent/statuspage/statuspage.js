// The status page's controls. They change a device's desired settings
// through the agent's API and show the settings the device reports.
//
// The API token is never part of the page: the operator types it in, and
// it stays in this tab's sessionStorage (gone when the tab closes), sent
// only as the bearer token of requests to this agent.
"use strict";
(() => {
  const tokenKey = "glowcast-api-token";
  const msg = document.getElementById("api-msg");
  const tokenInput = document.getElementById("token");
  const tokenState = document.getElementById("token-state");
  const refresh = Number(document.body.dataset.refresh || 10) * 1000;
  let busy = 0; // requests in flight: no reload under them
  let lastUse = 0; // when the operator last touched a control

  const say = (text, bad) => {
    msg.textContent = text;
    msg.className = bad ? "bad" : "";
  };
  const token = () => sessionStorage.getItem(tokenKey);
  const showTokenState = () => {
    tokenState.textContent = token() ? "token set for this tab" : "no token: changes need the agent's API token";
  };
  showTokenState();

  document.getElementById("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = tokenInput.value.trim();
    if (v) sessionStorage.setItem(tokenKey, v);
    else sessionStorage.removeItem(tokenKey);
    tokenInput.value = "";
    showTokenState();
  });

  // report puts the words the server writes (statuspage.ReportText).
  const reportText = (r) => {
    const a = r.applied || {};
    let t = `${a.on === false ? "off" : "on"}, ${a.brightness ?? 100} % (v${r.version})`;
    const errs = Object.keys(r.errors || {}).sort();
    if (errs.length) t += " · refused " + errs.map((k) => `${k}: ${r.errors[k]}`).join("; ");
    return t;
  };

  const rows = new Map();
  for (const row of document.querySelectorAll("tr.device")) {
    const id = row.dataset.device;
    const power = row.querySelector(".power");
    const slider = row.querySelector(".brightness");
    const level = row.querySelector(".level");
    const reported = row.querySelector(".reported");
    const c = { row, power, slider, level, reported, pending: 0 };
    rows.set(id, c);
    power.addEventListener("change", () => { lastUse = Date.now(); patch(c, id, { on: power.checked }); });
    slider.addEventListener("input", () => { lastUse = Date.now(); level.textContent = `${slider.value} %`; });
    slider.addEventListener("change", () => { lastUse = Date.now(); patch(c, id, { brightness: Number(slider.value) }); });
  }

  async function patch(c, id, body) {
    const headers = { "Content-Type": "application/json" };
    const tok = token();
    if (tok) headers.Authorization = "Bearer " + tok;
    busy++;
    try {
      const r = await fetch(`api/v1/devices/${encodeURIComponent(id)}/settings`, {
        method: "PATCH", headers, body: JSON.stringify(body), credentials: "omit", cache: "no-store",
      });
      const j = await r.json().catch(() => ({}));
      if (!r.ok) {
        const fields = j.fields ? " " + Object.entries(j.fields).map(([k, v]) => `${k}: ${v}`).join("; ") : "";
        const hint = r.status === 401 ? " Enter the token above." : "";
        say(`${id}: ${j.error || r.statusText}${fields}.${hint}`, true);
        await poll(); // put the controls back to what the device reports
        return;
      }
      c.pending = j.version;
      say(`${id}: desired settings v${j.version} sent; waiting for the device's report`);
    } catch (e) {
      say(`${id}: the agent did not answer (${e.message})`, true);
    } finally {
      busy--;
    }
    poll();
  }

  // poll reads the devices from the API and shows their reports. The
  // controls follow them, except while a change sent from here is not yet
  // reported and while the operator moves the slider.
  async function poll() {
    let list;
    try {
      const r = await fetch("api/v1/devices", { cache: "no-store", credentials: "omit" });
      if (!r.ok) return;
      list = await r.json();
    } catch (e) {
      return;
    }
    for (const d of list) {
      const c = rows.get(d.id);
      if (!c || !d.reported) continue;
      const a = d.reported.applied || {};
      c.reported.textContent = reportText(d.reported);
      c.row.dataset.reportedVersion = d.reported.version;
      if (d.reported.version < c.pending) continue;
      c.pending = 0;
      if (document.activeElement !== c.slider || Date.now() - lastUse > refresh) {
        c.slider.value = a.brightness ?? 100;
        c.level.textContent = `${c.slider.value} %`;
      }
      c.power.checked = a.on !== false;
    }
  }

  setInterval(poll, 2000);
  // Reload for fresh swatches, but not under a request, right after the
  // operator used a control, or while the token is being typed.
  setInterval(() => {
    if (busy === 0 && Date.now() - lastUse > refresh && document.activeElement !== tokenInput) location.reload();
  }, refresh);
})();
