/* Subcloud detail: fields, endpoints and alarms follow the live store; history reloads after a change;
 * operators manage / unmanage through the REST API, whose error message is shown as it is. */
(function () {
  "use strict";

  const { api, live, esc, groups, formatTime, parseTime, timeHtml, showTimes } = window.dcportal;
  const detail = document.getElementById("detail");
  const name = detail.dataset.name;
  let historyTimer = 0;

  function chip(el, value) {
    el.textContent = value;
    if (el.hasAttribute("data-chip")) el.className = `chip s-${value}`;
  }

  function show(value, key, el) {
    if (value === null || value === undefined || value === "") return "–";
    if (key === "group_id") return groups.get(value) || `group ${value}`;
    if (el.hasAttribute("data-time")) return formatTime(value, true); // portal/views.py TIME_FIELDS
    return String(value);
  }

  function render(store) {
    const s = store.subclouds.get(name);
    document.getElementById("deleted-banner").hidden = Boolean(s);
    if (!s) return;
    for (const el of document.querySelectorAll("[data-field]")) {
      const text = show(s[el.dataset.field], el.dataset.field, el);
      if (el.textContent !== text) {
        chip(el, text);
        el.classList.remove("flash");
        requestAnimationFrame(() => el.classList.add("flash"));
      }
    }
    for (const e of s.endpoint_sync_status || []) {
      const cell = document.querySelector(`tr[data-endpoint="${CSS.escape(e.endpoint_type)}"] .chip`);
      if (cell && cell.textContent !== e.sync_status) chip(cell, e.sync_status);
    }
    const faults = [...store.faults.values()]
      .filter((f) => f.subcloud === name)
      .sort((a, b) => (a["raised-at"] < b["raised-at"] ? 1 : -1));
    document.getElementById("fault-rows").innerHTML = faults.length
      ? faults.map((f) => `<tr><td><span class="chip sev-${esc(f.severity)}">${esc(f.severity)}</span></td>` +
          `<td>${esc(f.alarm_id)}</td><td>${esc(f.entity_instance_id)}</td><td>${timeHtml(f["raised-at"])}</td></tr>`).join("")
      : `<tr class="empty"><td colspan="4">No active alarms.</td></tr>`;
    updateButtons(s);
  }

  function reloadHistory() {
    clearTimeout(historyTimer);
    historyTimer = setTimeout(async () => {
      const response = await fetch(detail.dataset.historyUrl, { credentials: "same-origin" });
      if (!response.ok) return;
      const history = document.getElementById("history");
      history.innerHTML = await response.text();
      showTimes(history);
    }, 300);
  }

  // -- availability: uptime over 24 h and 7 d, and a strip of online / offline / unknown periods ---------
  const availability = document.getElementById("availability");
  let availabilityTimer = 0;

  function pct(ratio) {
    return ratio === null ? "unknown" : `${(ratio * 100).toFixed(ratio === 1 || ratio === 0 ? 0 : 2)} %`;
  }

  function strip(data) {
    const start = parseTime(data.start).getTime();
    const span = parseTime(data.end).getTime() - start || 1;
    const timeline = document.getElementById("timeline");
    // Built as elements: the Content-Security-Policy refuses style attributes in markup, not CSSOM widths.
    timeline.replaceChildren(...data.periods.map((p) => {
      const from = parseTime(p.start).getTime();
      const el = document.createElement("span");
      el.className = `period s-${p.status}`;
      el.dataset.status = p.status;
      el.style.width = `${(((parseTime(p.end).getTime() - from) / span) * 100).toFixed(3)}%`;
      el.title = `${p.status}: ${formatTime(p.start, true)} – ${formatTime(p.end, true)}`;
      return el;
    }));
    timeline.setAttribute("aria-label", `Availability timeline, last ${data.window}: ` +
      data.periods.map((p) => p.status).join(", "));
    document.getElementById("timeline-start").textContent = formatTime(data.start, true);
    document.getElementById("timeline-end").textContent = "now";
  }

  async function loadAvailability() {
    const chosen = availability.querySelector('input[name="window"]:checked').value;
    for (const w of ["24h", "7d"]) {
      const response = await fetch(`${availability.dataset.url}?window=${w}`, {
        credentials: "same-origin", headers: { Accept: "application/json" },
      });
      if (!response.ok) continue;
      const data = await response.json();
      availability.querySelector(`[data-uptime="${w}"]`).textContent = pct(data.uptime);
      if (w === chosen) strip(data);
    }
  }

  function reloadAvailability() {
    clearTimeout(availabilityTimer);
    availabilityTimer = setTimeout(loadAvailability, 300);
  }

  for (const radio of availability.querySelectorAll('input[name="window"]')) radio.addEventListener("change", loadAvailability);
  loadAvailability();

  live.on((kind, info, store) => {
    if (kind === "changes" && !info.names.has(name) && !info.faults) return;
    render(store);
    if (kind === "changes" && info.names.has(name)) {
      reloadHistory();
      reloadAvailability();
    }
  });

  // -- manage / unmanage (operators only: the form is not rendered for readers) --------
  const form = document.getElementById("manage-form");
  const result = document.getElementById("manage-result");

  function updateButtons(s) {
    if (!form) return;
    const managed = s["management-state"] === "managed";
    form.querySelector('[data-action="managed"]').disabled = managed;
    form.querySelector('[name="force"]').disabled = managed;
    form.querySelector('[data-action="unmanaged"]').disabled = !managed;
  }

  async function change(state) {
    const body = { "management-state": state };
    if (state === "managed" && form.elements.force.checked) body.force = true;
    result.className = "result";
    result.textContent = state === "managed" ? "Managing…" : "Unmanaging…";
    const { ok, data } = await api("PATCH", form.dataset.url, body);
    result.className = ok ? "result done" : "result error";
    result.textContent = ok ? `${name} is now ${data["management-state"] || state}.` : data.error_message;
  }

  // -- edit description, location and group (operators only), the same PATCH ------------
  const edit = document.getElementById("edit-form");
  if (edit) {
    edit.addEventListener("submit", async (event) => {
      event.preventDefault();
      const out = document.getElementById("edit-result");
      const body = {
        description: edit.elements.description.value,
        location: edit.elements.location.value,
        group_id: Number(edit.elements.group_id.value),
      };
      const { ok, data } = await api("PATCH", edit.dataset.url, body);
      out.className = ok ? "result done" : "result error";
      out.textContent = ok ? `${name} saved.` : data.error_message;
    });
  }

  if (form) {
    for (const button of form.querySelectorAll("button[data-action]")) {
      button.addEventListener("click", () => change(button.dataset.action));
    }
  }
})();
