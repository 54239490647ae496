/* Overview: fleet counts and per-group counts from the live store; online subclouds over the last hour. */
(function () {
  "use strict";

  const { live, esc, groups, readJson, vocabulary } = window.dcportal;
  // The cards' statuses, in the cards' (and the per-group columns') order, from the one vocabulary.
  const STATUSES = ["availability", "management", "sync"].map((kind) => vocabulary[kind]);
  const HEADLINE = vocabulary.severity.choices.filter((c) => vocabulary.headline_severities.includes(c.value));
  const COUNTED = [...STATUSES.flatMap((s) => s.choices), ...HEADLINE];
  const KEYS = ["total", ...COUNTED.map((c) => c.value)];
  // Problem counts (bad or warn tone) are only coloured while they are non-zero.
  const PROBLEMS = new Set(COUNTED.filter((c) => c.tone === "bad" || c.tone === "warn").map((c) => c.value));

  function empty() {
    return Object.fromEntries(KEYS.map((k) => [k, 0]));
  }

  /* The same counts from a summary subscription (a window of no rows: the server counts, docs/websockets.md). */
  function flat(c) {
    const out = empty();
    out.total = c.total;
    for (const kind of ["availability", "management", "sync"]) Object.assign(out, c[kind]);
    for (const h of HEADLINE) out[h.value] = c.alarms[h.value] || 0;
    return out;
  }

  function count(store) {
    if (store.view && store.counts && !store.asOf) {
      const perGroup = new Map();
      for (const id of groups.keys()) perGroup.set(id, empty());
      for (const [id, c] of Object.entries(store.counts.groups)) perGroup.set(Number(id), flat(c));
      return { fleet: flat(store.counts), perGroup };
    }
    const fleet = empty();
    const perGroup = new Map();
    for (const id of groups.keys()) perGroup.set(id, empty());
    const bySubcloud = new Map();
    for (const s of store.subclouds.values()) {
      let g = perGroup.get(s.group_id);
      if (!g) perGroup.set(s.group_id, (g = empty()));
      bySubcloud.set(s.name, g);
      for (const c of [fleet, g]) {
        c.total += 1;
        for (const status of STATUSES) c[s[status.field]] += 1;
      }
    }
    for (const f of store.faults.values()) {
      if (!vocabulary.headline_severities.includes(f.severity)) continue;
      fleet[f.severity] += 1;
      const g = bySubcloud.get(f.subcloud);
      if (g) g[f.severity] += 1;
    }
    return { fleet, perGroup };
  }

  function render(store) {
    const { fleet, perGroup } = count(store);
    for (const el of document.querySelectorAll("[data-count]")) {
      const n = fleet[el.dataset.count];
      el.textContent = n.toLocaleString();
      const stat = el.closest(".stat");
      if (stat && PROBLEMS.has(el.dataset.count)) stat.classList.toggle("zero", n === 0);
    }
    document.getElementById("total-line").textContent = `${fleet.total.toLocaleString()} subclouds`;
    const rows = [];
    for (const [id, c] of perGroup) {
      const name = groups.get(id) || `group ${id}`;
      const link = `subclouds/#group=${id}`;
      rows.push(`<tr><th scope="row"><a href="${esc(link)}">${esc(name)}</a></th>` +
        KEYS.map((k) => `<td class="num${c[k] && PROBLEMS.has(k) ? " hot" : ""}">${c[k]}</td>`)
          .join("") + "</tr>");
    }
    document.getElementById("group-rows").innerHTML = rows.join("");
    spark.update(fleet.online, fleet.total);
  }

  /* Per-minute online counts (min..max range and the value at the minute's end), extended live. */
  const spark = {
    svg: document.getElementById("avail-spark"),
    caption: document.getElementById("avail-caption"),
    series: readJson("availability-data") || [],
    total: 0,
    update(online, total) {
      this.total = total;
      const minute = new Date();
      minute.setSeconds(0, 0);
      let last = this.series[this.series.length - 1];
      if (!last || new Date(last.minute) < minute) {
        last = { minute: minute.toISOString(), min: online, max: online, end: online };
        this.series.push(last);
        while (this.series.length > 60) this.series.shift();
      }
      last.min = Math.min(last.min, online);
      last.max = Math.max(last.max, online);
      last.end = online;
      this.draw();
    },
    draw() {
      const W = 600, H = 80, n = 60;
      const top = Math.max(this.total, ...this.series.map((p) => p.max), 1);
      const low = Math.min(...this.series.map((p) => p.min));
      // Zoomed to the hour's range, so that a dip of a few percent is still plain to see.
      const bottom = Math.max(0, low - Math.max(1, Math.round(top * 0.05)));
      const y = (v) => H - 2 - ((v - bottom) / (top - bottom)) * (H - 4);
      const w = W / n;
      const offset = n - this.series.length;
      let bars = "";
      let line = "";
      this.series.forEach((p, i) => {
        const x = (offset + i) * w;
        const dip = p.min < p.max;
        bars += `<rect class="${dip ? "dip" : "range"}" x="${x + 1}" width="${w - 2}" y="${y(p.max)}" height="${Math.max(2, y(p.min) - y(p.max))}"></rect>`;
        line += `${i ? "L" : "M"}${x + w / 2},${y(p.end)}`;
      });
      this.svg.innerHTML = `${bars}<path class="line" d="${line}"></path>`;
      const lows = this.series.filter((p) => p.min < p.max).length;
      this.caption.textContent = `now ${this.series.at(-1).end} of ${this.total} online; lowest in the hour ${low}` +
        (lows ? `; changes in ${lows} minute${lows > 1 ? "s" : ""}` : "; no changes") + ` (scale ${bottom}–${top})`;
    },
  };

  /* The timeline of online counts over the retention: a bar per point, a click shows the fleet at that time. */
  const timeline = readJson("timeline-data") || [];
  const tsvg = document.getElementById("timeline");
  if (tsvg && timeline.length) {
    const top = Math.max(1, ...timeline.map((p) => p.online));
    const w = 600 / timeline.length;
    tsvg.innerHTML = timeline.map((p, i) => {
      const h = Math.max(1, (p.online / top) * 56);
      return `<a href="?as_of=${encodeURIComponent(p.at)}"><rect data-at="${esc(p.at)}" x="${i * w}" width="${Math.max(1, w - 0.5)}" ` +
        `y="${60 - h}" height="${h}"><title>${esc(p.at)}: ${p.online} online</title></rect></a>`;
    }).join("");
  }

  live.view = { limit: 0 }; // counts only: the overview shows no subcloud by name
  live.on((kind, info, store) => render(store));
  // A new minute starts even when nothing changes.
  setInterval(() => live.loaded && !live.asOf && render(live), 15000);
})();
