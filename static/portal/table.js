/* A table that only puts the rows in view into the DOM, so 5,000 subclouds
 * (or faults) filter, sort and update live without long main-thread tasks.
 *
 * new VirtualTable(container, {rowHtml(key), sortValue(key, column), sort: [column, dir], onSort(column, dir),
 *                               onRange(first, last)})   onRange: the rows in (or near) view, after each render
 * table.sorted(keys)    keys in the current order (sortValue gives numbers or strings; ties by key, naturally)
 * table.show(keys)      the rows to show, already in order
 * table.changed(keys)   these rows' content changed: re-render those in view and flash them
 * table.refresh()       any row in view may have changed (e.g. alarm counts): re-render those whose HTML differs
 * Rows keep their element while their HTML is unchanged, so focus and hover survive updates.
 *
 * Each frame's work is bounded, so a flood of changes never makes one long main-thread task: a frame rebuilds
 * at most REBUILD_ROWS rows that already have an element (those in view first, within BUDGET_MS of script), and
 * the rest in the frames after; rows coming into view are always built at once. A frame reads no layout (the
 * sizes come from observers, the scroll position from scroll events), and a flash is a class taken off by one
 * timer, not a CSS animation that repaints every frame.
 */
(function () {
  "use strict";

  const OVERSCAN = 4; // rows above and below the view (each row in the DOM adds to every frame's layout and paint)
  const REBUILD_ROWS = 8; // rows rebuilt per frame: their script, style, layout and paint stay a few ms
  const BUDGET_MS = 4; // ... and their script time
  const FLASH_MS = 1600;

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
      this.dirty = new Set(); // keys whose row must be rebuilt (if its HTML changed)
      this.flashing = new Set(); // ... and flashed
      this.recheck = false; // every row in view may have changed (show())
      this.flashes = []; // [tr, until]
      this.flashTimer = 0;
      this.top = container.scrollTop;
      this.before = this.makeSpacer();
      this.after = this.makeSpacer();
      container.addEventListener("scroll", () => {
        this.top = container.scrollTop;
        this.schedule();
      }, { passive: true });
      new ResizeObserver(() => {
        this.viewHeight = container.clientHeight;
        this.headHeight = this.table.tHead.offsetHeight;
        this.schedule();
      }).observe(container);
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
      this.recheck = true;
      this.schedule();
    }

    refresh() {
      this.recheck = true;
      this.schedule();
    }

    changed(keys) {
      for (const key of keys) {
        this.dirty.add(key);
        this.flashing.add(key);
      }
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
      const top = Math.max(0, this.top - this.headHeight);
      const inView = Math.floor(top / height);
      const first = Math.max(0, inView - OVERSCAN);
      const count = Math.ceil(this.viewHeight / height) + 2 * OVERSCAN;
      const last = Math.min(this.keys.length, first + count);
      const keys = [];
      for (let i = first; i < last; i++) keys.push(this.keys[i]);
      if (this.recheck) {
        for (const key of keys) this.dirty.add(key);
        this.recheck = false;
      }

      // The rows in view first, then the overscan above and below.
      const visible = Math.min(last, inView + count - 2 * OVERSCAN);
      const order = [];
      for (let i = Math.max(first, inView); i < visible; i++) order.push(i);
      for (let i = first; i < last; i++) if (i < inView || i >= visible) order.push(i);

      const started = performance.now();
      const slots = new Array(keys.length);
      const fresh = [];
      const waiting = new Set();
      let rebuilt = 0;
      for (const i of order) {
        const key = keys[i - first];
        const old = this.rendered.get(key);
        let row = old;
        if (!old || this.dirty.has(key)) {
          if (old && rebuilt > 0 && (rebuilt >= REBUILD_ROWS || performance.now() - started > BUDGET_MS)) {
            waiting.add(key); // its old row stays one more frame
          } else {
            const html = this.rowHtml(key);
            if (!old || old.html !== html) {
              row = { tr: null, html, index: 0 };
              fresh.push([row, old && this.flashing.has(key)]);
              if (old) rebuilt += 1;
            }
          }
        }
        slots[i - first] = row;
      }
      // Every new or changed row parsed at once: one parse instead of one per row.
      const built = fresh.length ? this.buildAll(fresh.map(([row]) => row.html)) : [];
      const until = performance.now() + FLASH_MS;
      fresh.forEach(([row, flash], j) => {
        row.tr = built[j];
        if (flash) {
          row.tr.classList.add("flash");
          this.flashes.push([row.tr, until]);
        }
      });
      if (fresh.some(([, flash]) => flash)) this.unflashLater();
      const next = new Map();
      slots.forEach((row, j) => {
        next.set(keys[j], row);
        if (row.index !== first + j + 2) row.tr.setAttribute("aria-rowindex", String((row.index = first + j + 2)));
      });
      this.rendered = next;
      // Changes to rows out of view are forgotten: those rows are built afresh when they come into view.
      this.dirty = waiting;
      this.flashing = new Set([...this.flashing].filter((key) => waiting.has(key)));

      this.setSpacer(this.before, first * height);
      this.setSpacer(this.after, (this.keys.length - last) * height);
      this.place([this.before, ...slots.map((row) => row.tr), this.after]);
      this.onRange(first, last);
      if (waiting.size) this.schedule();
    }

    /* One timer takes the flash off every row whose time is up. */
    unflashLater() {
      if (this.flashTimer) return;
      this.flashTimer = setTimeout(() => {
        this.flashTimer = 0;
        const now = performance.now();
        this.flashes = this.flashes.filter(([tr, until]) => {
          if (until > now) return true;
          tr.classList.remove("flash");
          return false;
        });
        if (this.flashes.length) this.unflashLater();
      }, Math.max(50, this.flashes[0][1] - performance.now()));
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
      if (tr.px === px) return;
      tr.px = px;
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

    /* The sizes a frame needs, read once (then kept by the ResizeObserver). */
    measure() {
      const probe = this.build(`<tr><td colspan="${this.columns}">&nbsp;</td></tr>`);
      this.tbody.appendChild(probe);
      this.rowHeight = probe.getBoundingClientRect().height || 36;
      probe.remove();
      this.viewHeight = this.container.clientHeight;
      this.headHeight = this.table.tHead.offsetHeight;
      this.top = this.container.scrollTop;
    }
  }

  window.VirtualTable = VirtualTable;
})();

/* The filter forms filter in place as you type: Enter must not submit them (no inline handler: the CSP forbids it). */
document.addEventListener("submit", function (event) {
  if (event.target.matches("form.filters")) event.preventDefault();
});
