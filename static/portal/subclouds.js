/* Subclouds page: a window of the subclouds, filtered and sorted by the server (docs/websockets.md, "Windows"),
 * updated in place; only the rows near the view are ever sent. In history mode (?as_of=) the whole fleet as it
 * was comes from the REST API and is filtered and sorted here. */
(function () {
  "use strict";

  const { api, confirm, live, esc, timeHtml, groups, saveFilters, vocabulary, noAlarms } = window.dcportal;
  const container = document.getElementById("subclouds-table");
  const form = document.getElementById("filters");
  const shown = document.getElementById("shown");
  const SHORT = Object.fromEntries(vocabulary.endpoints.map((e) => [e.value, e.short]));
  let alarms = new Map();
  const NO_ALARMS = noAlarms();
  const selectable = container.hasAttribute("data-selectable"); // operators only: the bulk form is rendered for them
  const selected = new Set();
  let shownKeys = [];
  const windowed = !new URLSearchParams(location.search).get("as_of");
  const PENDING = "\u0001"; // key prefix of a row whose subcloud has not arrived yet
  const SPAN = 100; // rows asked for around the ones in view
  let asked = null; // the last view asked for (JSON), until a window answers

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
      if (windowed) return ask(0, true);
      reorder();
      refilter();
    },
    onRange,
  });

  /* The view the server filters, sorts and cuts for this page. */
  function view(offset, limit) {
    const f = current();
    const filter = {};
    for (const key of ["availability", "management", "sync", "group", "alarms", "q"]) if (f[key]) filter[key] = f[key];
    return { filter, sort: [table.sortKey, table.sortDir], offset, limit: limit || SPAN };
  }

  function ask(offset, top, limit) {
    const v = view(offset, limit);
    const text = JSON.stringify(v);
    if (text === asked) return;
    asked = text;
    if (top) container.scrollTop = 0;
    live.subscribe(v);
  }

  /* Rows in view that the window does not hold: ask for a window around them. */
  function onRange(first, last) {
    if (!windowed || !live.loaded || live.asOf) return;
    const end = Math.min(last, live.matched);
    if (first >= live.offset && end <= live.offset + live.order.length) return;
    const limit = Math.min(500, Math.max(SPAN, last - first + 20));
    ask(Math.max(0, first - Math.floor((limit - (last - first)) / 2)), false, limit);
  }

  /* The table's keys for a window: every matching row, the ones not sent being placeholders. */
  function windowKeys() {
    const { offset, order, matched } = live;
    return new Proxy([], {
      get(_, prop) {
        if (prop === "length") return matched;
        const i = Number(prop);
        if (!Number.isInteger(i)) return undefined;
        return i >= offset && i < offset + order.length ? order[i - offset] : PENDING + i;
      },
    });
  }
  live.view = windowed ? view(0) : null;

  function groupName(id) {
    return groups.get(id) || `group ${id}`;
  }

  function rowHtml(name) {
    const s = live.subclouds.get(name);
    if (!s) return `<tr class="pending"><td colspan="9">&nbsp;</td></tr>`;
    const a = alarms.get(name) || NO_ALARMS;
    const eps = (s.endpoint_sync_status || [])
      .map((e) => `<span class="ep s-${esc(e.sync_status)}" title="${esc(e.endpoint_type)}: ${esc(e.sync_status)}">` +
        `${esc(SHORT[e.endpoint_type] || e.endpoint_type)}<span class="sr-only">: ${esc(e.sync_status)}</span></span>`)
      .join("");
    const alarmCell = a.total
      ? `<span class="alarm-n ${a.critical ? "crit" : a.major ? "maj" : ""}" title="${a.critical} critical, ${a.major} major, ${a.minor} minor">${a.total}</span>`
      : `<span class="muted">0</span>`;
    const box = selectable
      ? `<input type="checkbox" data-select-row aria-label="Select ${esc(name)}"${selected.has(name) ? " checked" : ""}> `
      : "";
    return `<tr data-key="${esc(name)}">` +
      `<td>${box}<a href="${encodeURIComponent(name)}/">${esc(name)}</a></td>` +
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
    shownKeys = keys;
    showCount(keys.length, live.subclouds.size);
  }

  // -- export: exactly the rows the filters show, in table order, in export_fleet's columns ----------
  const COLUMNS = vocabulary.fleet_columns;

  async function exportRows() {
    let names = shownKeys;
    let byName = live.subclouds;
    if (windowed) {
      names = await live.matchingNames();
      const { ok, data } = await api("GET", "/v1.0/subclouds");
      if (!ok) return null;
      byName = new Map(data.subclouds.map((s) => [s.name, s]));
    }
    return names.filter((name) => byName.has(name)).map((name) => {
      const s = byName.get(name);
      const row = {};
      for (const [column, key] of COLUMNS) {
        const value = column === vocabulary.fleet_group_name ? groups.get(s.group_id) : key ? s[key] : null;
        row[column] = value === undefined ? null : value;
      }
      return row;
    });
  }

  function csvCell(value) {
    const text = value === null ? "" : String(value);
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }

  async function download(fmt) {
    const rows = await exportRows();
    if (!rows) return;
    const text = fmt === "json"
      ? JSON.stringify(rows, null, 2) + "\n"
      : [COLUMNS.map(([c]) => c), ...rows.map((r) => COLUMNS.map(([c]) => r[c]))]
          .map((line) => line.map(csvCell).join(",") + "\r\n").join("");
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], { type: fmt === "json" ? "application/json" : "text/csv" }));
    link.download = `subclouds.${fmt}`;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  for (const button of document.querySelectorAll("[data-export]")) {
    button.addEventListener("click", () => download(button.dataset.export));
  }

  // -- bulk actions (operators): a selection or a whole group, confirmed with the count ----------
  const bulk = document.getElementById("bulk");

  function showSelection() {
    for (const box of container.querySelectorAll("input[data-select-row]")) {
      const checked = selected.has(box.closest("tr").dataset.key);
      if (box.checked !== checked) box.checked = checked;
    }
    const count = document.getElementById("selected-count");
    if (count.textContent !== `${selected.size} selected`) count.textContent = `${selected.size} selected`;
  }

  function bulkFields() {
    const action = bulk.elements.action.value;
    bulk.elements.force.closest("label").hidden = action !== "manage";
    bulk.elements.to_group.closest("label").hidden = action !== "move";
  }

  async function applyBulk() {
    const action = bulk.elements.action.value;
    const scope = bulk.elements.scope.value;
    const body = { action };
    let count;
    let what;
    if (scope === "selected") {
      body.subclouds = [...selected];
      count = selected.size;
      what = `${count} selected subcloud${count === 1 ? "" : "s"}`;
    } else {
      body.group = Number(scope);
      count = windowed
        ? ((live.counts.groups[scope] || {}).total || 0)
        : [...live.subclouds.values()].filter((s) => String(s.group_id) === scope).length;
      what = `all ${count} subcloud${count === 1 ? "" : "s"} of group ${groups.get(Number(scope))}`;
    }
    const summary = document.getElementById("bulk-summary");
    const list = document.getElementById("bulk-results");
    if (!count) {
      summary.className = "result error";
      summary.textContent = "Nothing to act on: select subclouds first.";
      return;
    }
    if (action === "manage" && bulk.elements.force.checked) body.force = true;
    let verb = vocabulary.bulk_actions[action];
    if (action === "move") {
      body.to_group = Number(bulk.elements.to_group.value);
      verb = `${verb} to group ${groups.get(body.to_group)}:`;
    }
    if (!(await confirm(`${verb} ${what}?`))) return;
    summary.className = "result";
    summary.textContent = "Working…";
    list.innerHTML = "";
    const { ok, data } = await api("POST", "/v1.0/subcloud-bulk-actions", body);
    if (!ok) {
      summary.className = "result error";
      summary.textContent = data.error_message;
      return;
    }
    summary.className = data.refused ? "result error" : "result done";
    summary.textContent = `${vocabulary.bulk_actions[action]}: ${data.done} done, ${data.refused} refused.`;
    list.innerHTML = data.results
      .map((r) => r.status === "done"
        ? `<li class="done" data-subcloud="${esc(r.subcloud)}">${esc(r.subcloud)}: done</li>`
        : `<li class="refused" data-subcloud="${esc(r.subcloud)}">${esc(r.subcloud)}: ${esc(r.error_message)}</li>`)
      .join("");
  }

  if (bulk) {
    container.addEventListener("change", (event) => {
      if (!event.target.matches("input[data-select-row]")) return;
      const name = event.target.closest("tr").dataset.key;
      if (event.target.checked) selected.add(name);
      else selected.delete(name);
      showSelection();
    });
    for (const button of bulk.querySelectorAll("[data-select]")) {
      button.addEventListener("click", async () => {
        if (button.dataset.select === "shown") for (const name of windowed ? await live.matchingNames() : shownKeys) selected.add(name);
        else selected.clear();
        showSelection();
      });
    }
    bulk.elements.action.addEventListener("change", bulkFields);
    bulk.addEventListener("submit", (event) => {
      event.preventDefault();
      applyBulk();
    });
    bulkFields();
  }

  form.addEventListener("input", () => {
    saveFilters(form, filters);
    if (windowed) ask(0, true);
    else refilter();
  });

  function showCount(matched, total) {
    const text = matched === total ? `${total} subclouds` : `${matched} of ${total} subclouds`;
    if (shown.textContent !== text) shown.textContent = text; // an unchanged count dirties no layout
  }

  live.on((kind, info, store) => {
    if (kind !== "changes" || info.faults) alarms = store.alarmCounts();
    if (windowed && !store.asOf) {
      if (kind === "window") {
        asked = null;
        table.show(windowKeys());
      }
      showCount(store.matched, store.counts.total);
      if (kind === "changes") table.changed(info.names);
      if (kind === "changes" && info.faults) table.refresh(); // a row's alarm count, whatever its name
      if (selectable) showSelection();
      return;
    }
    // By name, only arrivals and departures move rows; by any other column, any change may.
    const moved = kind === "snapshot" || table.sortKey !== "name" || order.length !== store.subclouds.size ||
      [...info.names].some((name) => store.subclouds.has(name) !== inOrder.has(name));
    if (moved) reorder();
    refilter();
    if (kind === "changes") table.changed(info.names);
    if (selectable) {
      for (const name of [...selected]) if (!store.subclouds.has(name)) selected.delete(name); // deleted meanwhile
      showSelection();
    }
  });
})();
