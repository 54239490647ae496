/* Subclouds page: every subcloud from the live store, filtered, sorted, updated in place. */
(function () {
  "use strict";

  const { live, esc, timeHtml, groups, saveFilters, vocabulary, noAlarms } = window.dcportal;
  const container = document.getElementById("subclouds-table");
  const form = document.getElementById("filters");
  const shown = document.getElementById("shown");
  const SHORT = Object.fromEntries(vocabulary.endpoints.map((e) => [e.value, e.short]));
  let alarms = new Map();
  const NO_ALARMS = noAlarms();

  // Filters live in the URL fragment (#availability=offline) so overview counts can link here.
  const filters = new URLSearchParams(location.hash.slice(1));
  for (const el of form.elements) if (el.name && filters.has(el.name)) el.value = filters.get(el.name);

  let order = []; // every subcloud, in table order; re-sorted only when the order can have changed
  let inOrder = new Set();
  function reorder() {
    order = table.sorted([...live.subclouds.keys()]);
    inOrder = new Set(order);
  }
  const table = new window.VirtualTable(container, {
    rowHtml,
    sortValue,
    sort: [filters.get("sort") || "name", filters.get("dir") || "ascending"],
    onSort(key, dir) {
      filters.set("sort", key);
      filters.set("dir", dir);
      saveFilters(form, filters);
      reorder();
      refilter();
    },
  });

  function groupName(id) {
    return groups.get(id) || `group ${id}`;
  }

  function rowHtml(name) {
    const s = live.subclouds.get(name);
    const a = alarms.get(name) || NO_ALARMS;
    const eps = (s.endpoint_sync_status || [])
      .map((e) => `<span class="ep s-${esc(e.sync_status)}" title="${esc(e.endpoint_type)}: ${esc(e.sync_status)}">` +
        `${esc(SHORT[e.endpoint_type] || e.endpoint_type)}<span class="sr-only">: ${esc(e.sync_status)}</span></span>`)
      .join("");
    const alarmCell = a.total
      ? `<span class="alarm-n ${a.critical ? "crit" : a.major ? "maj" : ""}" title="${a.critical} critical, ${a.major} major, ${a.minor} minor">${a.total}</span>`
      : `<span class="muted">0</span>`;
    return `<tr data-key="${esc(name)}">` +
      `<td><a href="${encodeURIComponent(name)}/">${esc(name)}</a></td>` +
      `<td>${esc(groupName(s.group_id))}</td>` +
      `<td><span class="chip s-${esc(s["availability-status"])}">${esc(s["availability-status"])}</span></td>` +
      `<td><span class="chip s-${esc(s["management-state"])}">${esc(s["management-state"])}</span></td>` +
      `<td>${esc(s["deploy-status"])}</td>` +
      `<td><span class="chip s-${esc(s.sync_status)}">${esc(s.sync_status)}</span></td>` +
      `<td><span class="eps">${eps}</span></td>` +
      `<td class="num">${alarmCell}</td>` +
      `<td>${timeHtml(live.lastChange.get(name))}</td></tr>`;
  }

  function sortValue(name, key) {
    const s = live.subclouds.get(name);
    if (key === "name") return name;
    if (key === "group") return groupName(s.group_id);
    if (key === "alarms") {
      const a = alarms.get(name) || NO_ALARMS;
      return a.critical * 1e6 + a.major * 1e3 + a.total;
    }
    if (key === "last_change") return live.lastChange.get(name) || "";
    return s[key];
  }

  function matches(s, f) {
    if (f.availability && s["availability-status"] !== f.availability) return false;
    if (f.management && s["management-state"] !== f.management) return false;
    if (f.sync && s.sync_status !== f.sync) return false;
    if (f.group && String(s.group_id) !== f.group) return false;
    if (f.alarms) {
      const a = alarms.get(s.name) || NO_ALARMS;
      if (f.alarms === "any" && !a.total) return false;
      if (f.alarms === "critical" && !a.critical) return false;
      if (f.alarms === "none" && a.total) return false;
    }
    if (f.q) {
      const hay = `${s.name} ${s.description || ""} ${s.location || ""} ${groupName(s.group_id)} ${s["region-name"]}`;
      if (!hay.toLowerCase().includes(f.q)) return false;
    }
    return true;
  }

  function current() {
    const f = {};
    for (const el of form.elements) if (el.name) f[el.name] = el.value.trim();
    f.q = (f.q || "").toLowerCase();
    return f;
  }

  function refilter() {
    const f = current();
    const keys = [];
    for (const name of order) if (matches(live.subclouds.get(name), f)) keys.push(name);
    table.show(keys);
    const total = live.subclouds.size;
    shown.textContent = keys.length === total ? `${total} subclouds` : `${keys.length} of ${total} subclouds`;
  }

  form.addEventListener("input", () => {
    saveFilters(form, filters);
    refilter();
  });

  live.on((kind, info, store) => {
    if (kind === "snapshot" || info.faults) alarms = store.alarmCounts();
    // By name, only arrivals and departures move rows; by any other column, any change may.
    const moved = kind === "snapshot" || table.sortKey !== "name" || order.length !== store.subclouds.size ||
      [...info.names].some((name) => store.subclouds.has(name) !== inOrder.has(name));
    if (moved) reorder();
    refilter();
    if (kind === "changes") table.changed(info.names);
  });
})();
