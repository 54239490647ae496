/* A table that only puts the rows in view into the DOM, so 5,000 subclouds
 * (or faults) filter, sort and update live without long main-thread tasks.
 *
 * new VirtualTable(container, {rowHtml(key), sortValue(key, column), sort: [column, dir], onSort(column, dir),
 *                               onRange(first, last)})   onRange: the rows in (or near) view, after each render
 * table.sorted(keys)    keys in the current order (sortValue gives numbers or strings; ties by key, naturally)
 * table.show(keys)      the rows to show, already in order
 * table.changed(keys)   these rows' content changed: re-render those in view and flash them
 * Rows keep their element while their HTML is unchanged, so focus and hover survive updates.
 */
(function () {
  "use strict";

  const OVERSCAN = 10;

  class VirtualTable {
    constructor(container, options) {
      this.container = container;
      this.table = container.querySelector("table");
      this.tbody = this.table.tBodies[0];
      this.rowHtml = options.rowHtml;
      this.sortValue = options.sortValue;
      this.natural = new Map();
      this.sortKey = options.sort[0];
      this.sortDir = options.sort[1];
      this.onSort = options.onSort || (() => {});
      this.onRange = options.onRange || (() => {});
      this.keys = [];
      this.rendered = new Map(); // key -> {tr, html}
      this.rowHeight = 0;
      this.columns = this.table.tHead.rows[0].cells.length;
      this.frame = 0;
      this.before = this.makeSpacer();
      this.after = this.makeSpacer();
      container.addEventListener("scroll", () => this.schedule(), { passive: true });
      window.addEventListener("resize", () => this.schedule());
      this.setupSorting();
    }

    setupSorting() {
      for (const th of this.table.tHead.querySelectorAll("th[data-sort]")) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = th.textContent;
        th.textContent = "";
        th.appendChild(button);
        button.addEventListener("click", () => {
          const key = th.dataset.sort;
          this.sortDir = key === this.sortKey && this.sortDir === "ascending" ? "descending" : "ascending";
          this.sortKey = key;
          this.showSort();
          this.onSort(this.sortKey, this.sortDir);
        });
      }
      this.showSort();
    }

    showSort() {
      for (const th of this.table.tHead.querySelectorAll("th[data-sort]")) {
        if (th.dataset.sort === this.sortKey) th.setAttribute("aria-sort", this.sortDir);
        else th.removeAttribute("aria-sort");
      }
    }

    /* "subcloud10" sorts after "subcloud9": digit runs are padded; cached per key. */
    naturalKey(value) {
      let k = this.natural.get(value);
      if (k === undefined) {
        k = String(value).toLowerCase().replace(/\d+/g, (d) => d.padStart(12, "0"));
        if (this.natural.size > 100000) this.natural.clear();
        this.natural.set(value, k);
      }
      return k;
    }

    sorted(keys) {
      const sign = this.sortDir === "descending" ? -1 : 1;
      const rows = keys.map((key) => {
        const v = this.sortValue(key, this.sortKey);
        return [typeof v === "number" ? v : this.naturalKey(v ?? ""), this.naturalKey(key), key];
      });
      rows.sort((a, b) => sign * (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
      return rows.map((r) => r[2]);
    }

    show(keys) {
      this.keys = keys;
      this.table.setAttribute("aria-rowcount", String(keys.length + 1));
      this.schedule();
    }

    changed(keys) {
      this.flashing = keys;
      this.schedule();
    }

    schedule() {
      if (this.frame) return;
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.render();
      });
    }

    /* Renders now (tests and first paint); otherwise rendering waits for the next frame. */
    render() {
      if (!this.rowHeight) this.measure();
      const height = this.rowHeight;
      const headHeight = this.table.tHead.offsetHeight;
      const top = Math.max(0, this.container.scrollTop - headHeight);
      const first = Math.max(0, Math.floor(top / height) - OVERSCAN);
      const count = Math.ceil(this.container.clientHeight / height) + 2 * OVERSCAN;
      const last = Math.min(this.keys.length, first + count);
      const flashing = this.flashing || new Set();
      this.flashing = null;

      const next = new Map();
      const rows = [];
      const fresh = [];
      for (let i = first; i < last; i++) {
        const key = this.keys[i];
        const html = this.rowHtml(key);
        const old = this.rendered.get(key);
        const row = { tr: old && old.html === html ? old.tr : null, html };
        if (!row.tr) fresh.push([row, old && flashing.has(key)]);
        next.set(key, row);
        rows.push([row, i]);
      }
      // Every new or changed row parsed at once: one parse instead of one per row (a flood changes them all).
      const built = fresh.length ? this.buildAll(fresh.map(([row]) => row.html)) : [];
      fresh.forEach(([row, flash], j) => {
        row.tr = built[j];
        if (flash) row.tr.classList.add("flash");
      });
      for (const [row, i] of rows) row.tr.setAttribute("aria-rowindex", String(i + 2));
      this.rendered = next;

      this.setSpacer(this.before, first * height);
      this.setSpacer(this.after, (this.keys.length - last) * height);
      this.place([this.before, ...rows.map(([row]) => row.tr), this.after]);
      this.onRange(first, last);
    }

    /* Puts exactly `wanted` into the tbody, moving as few elements as possible (focus stays put). */
    place(wanted) {
      const keep = new Set(wanted);
      for (const el of Array.from(this.tbody.children)) if (!keep.has(el)) el.remove();
      let cursor = this.tbody.firstElementChild;
      for (const el of wanted) {
        if (el === cursor) cursor = cursor.nextElementSibling;
        else this.tbody.insertBefore(el, cursor);
      }
    }

    makeSpacer() {
      const tr = document.createElement("tr");
      tr.className = "spacer";
      tr.setAttribute("aria-hidden", "true");
      const td = document.createElement("td");
      td.colSpan = this.columns;
      tr.appendChild(td);
      return tr;
    }

    setSpacer(tr, px) {
      tr.style.height = `${px}px`;
      tr.hidden = px === 0;
    }

    build(html) {
      return this.buildAll([html])[0];
    }

    /* One <tr> per html string (each is one row). */
    buildAll(htmls) {
      const tmp = document.createElement("tbody");
      tmp.innerHTML = htmls.join("");
      return Array.from(tmp.children);
    }

    measure() {
      const probe = this.build(`<tr><td colspan="${this.columns}">&nbsp;</td></tr>`);
      this.tbody.appendChild(probe);
      this.rowHeight = probe.getBoundingClientRect().height || 36;
      probe.remove();
    }
  }

  window.VirtualTable = VirtualTable;
})();

/* The filter forms filter in place as you type: Enter must not submit them (no inline handler: the CSP forbids it). */
document.addEventListener("submit", function (event) {
  if (event.target.matches("form.filters")) event.preventDefault();
});
