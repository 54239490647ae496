/* Alarms page: the active faults from the live store, newest first, filtered and sorted in place. */
(function () {
  "use strict";

  const { live, esc, timeHtml, saveFilters, vocabulary } = window.dcportal;
  const container = document.getElementById("alarms-table");
  const form = document.getElementById("filters");
  const shown = document.getElementById("shown");
  // Severities come most severe first: the first ranks highest.
  const SEVERITY = Object.fromEntries(vocabulary.severity.choices.map((c, i, all) => [c.value, all.length - i]));

  const filters = new URLSearchParams(location.hash.slice(1));
  for (const el of form.elements) if (el.name && filters.has(el.name)) el.value = filters.get(el.name);

  const table = new window.VirtualTable(container, {
    rowHtml(uuid) {
      const f = live.faults.get(uuid);
      return `<tr data-key="${esc(uuid)}">` +
        `<td><span class="chip sev-${esc(f.severity)}">${esc(f.severity)}</span></td>` +
        `<td>${esc(f.alarm_id)}</td>` +
        `<td><a href="../subclouds/${encodeURIComponent(f.subcloud)}/">${esc(f.subcloud)}</a></td>` +
        `<td title="${esc(f.entity_instance_id)}">${esc(f.entity_instance_id)}</td>` +
        `<td title="${esc(f.reason_text)}">${esc(f.reason_text)}</td>` +
        `<td>${timeHtml(f["raised-at"])}</td></tr>`;
    },
    sortValue(uuid, key) {
      const f = live.faults.get(uuid);
      // Ties (same severity, same alarm...) newest first.
      return key === "severity" ? SEVERITY[f.severity] : key === "raised-at" ? f["raised-at"] : `${f[key]} ${f["raised-at"]}`;
    },
    sort: [filters.get("sort") || "raised-at", filters.get("dir") || "descending"],
    onSort(key, dir) {
      filters.set("sort", key);
      filters.set("dir", dir);
      saveFilters(form, filters);
      refilter();
    },
  });

  function refilter() {
    const q = form.elements.q.value.trim().toLowerCase();
    const severity = form.elements.severity.value;
    const keys = [];
    for (const f of live.faults.values()) {
      if (severity && f.severity !== severity) continue;
      if (q && !`${f.subcloud} ${f.alarm_id} ${f.entity_instance_id} ${f.reason_text}`.toLowerCase().includes(q)) continue;
      keys.push(f.uuid);
    }
    table.show(table.sorted(keys));
    const total = live.faults.size;
    shown.textContent = keys.length === total ? `${total} active` : `${keys.length} of ${total} active`;
  }

  form.addEventListener("input", () => {
    saveFilters(form, filters);
    refilter();
  });

  live.on((kind, info) => {
    if (kind === "changes" && !info.faults) return;
    refilter();
  });
})();
