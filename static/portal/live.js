/* The live status store shared by every page: /ws/status/ (docs/websockets.md).
 *
 * Keeps every subcloud (by name), every active fault (by uuid) and the
 * revision the page has applied. On a dropped socket it reconnects with
 * backoff and asks for everything after that revision (?since=R), so nothing
 * is missed or applied out of order; a snapshot replaces everything.
 * Pages subscribe with `dcportal.live.on(fn)`; fn(kind, info) is called with
 * kind "snapshot", "window" or "changes" (info.names: the subclouds that changed,
 * info.faults: whether faults changed, info.counts: whether the fleet's counts changed).
 *
 * Messages are applied in order, in slices of at most SLICE_MS of script (STEP items each): a large one (a full
 * snapshot, a window, thousands of changes) yields to the browser between slices, so no task grows long; the
 * listeners hear of a message once it is applied whole, and a snapshot's maps are swapped in at its end.
 *
 * A page that sets `live.view` before the page has loaded (or calls live.subscribe(view)) gets a window
 * instead (docs/websockets.md, "Windows"): only the subclouds in view (`order`, from `offset`), the number
 * matching the filter (`matched`) and the fleet's `counts`, filtered and sorted by the server.
 */
(function () {
  "use strict";

  const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
  const SLICE_MS = 6;
  const STEP = 500; // items applied between two looks at the clock
  const LABELS = {
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting…",
    resyncing: "Resyncing…",
    history: "History",
  };

  class LiveStatus {
    constructor(path) {
      this.path = path;
      this.revision = null;
      this.subclouds = new Map();
      this.faults = new Map();
      this.lastChange = new Map();
      this.listeners = [];
      this.attempt = 0;
      this.ws = null;
      this.loaded = false;
      this.snapshots = 0; // how many full snapshots (or first windows) this page needed (a resync needs none)
      this.view = null; // windowed: {filter, sort, offset, limit}
      this.order = [];
      this.offset = 0;
      this.matched = 0;
      this.counts = null;
      this.waitingNames = [];
      this.inbox = []; // received, not yet applied (in order)
      this.current = null; // the message being applied: a generator, one step per slice
      this.draining = false;
      this.wake = new MessageChannel(); // the next slice, as a task of its own (no setTimeout clamping)
      this.wake.port1.onmessage = () => this.drain();
    }

    /* A new view (windowed mode): answered by a fresh window. names: also every matching name, in order. */
    subscribe(view, names) {
      this.view = view;
      if (this.ws && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(JSON.stringify({ type: "subscribe", view, names: Boolean(names) }));
      }
    }

    /* Every subcloud name matching the current view's filter, in its order (for export and "select all shown"). */
    matchingNames() {
      const cached = this.namesCache;
      if (cached && cached.key === `${JSON.stringify(this.view)}@${this.revision}`) return Promise.resolve(cached.names);
      return new Promise((resolve) => {
        this.waitingNames.push(resolve);
        this.subscribe(this.view, true);
      });
    }

    on(fn) {
      this.listeners.push(fn);
      if (this.loaded) fn("snapshot", {}, this);
    }

    emit(kind, info) {
      for (const fn of this.listeners) {
        try {
          fn(kind, info, this);
        } catch (err) {
          console.error(err);
        }
      }
    }

    setState(state) {
      document.body.dataset.live = state;
      const label = document.querySelector("#conn .conn-label");
      if (label) label.textContent = LABELS[state];
    }

    connect() {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const query = new URLSearchParams();
      if (this.revision !== null) query.set("since", this.revision);
      if (this.view) query.set("view", JSON.stringify(this.view));
      this.fresh = this.revision === null;
      this.setState(this.revision === null ? "connecting" : "resyncing");
      const ws = new WebSocket(`${scheme}//${location.host}${this.path}${query.size ? "?" + query : ""}`);
      this.ws = ws;
      this.parts = null;
      this.inbox = [];
      this.current = null; // a message half applied from the last socket: resent (since=R) or replaced
      ws.onmessage = (event) => {
        if (this.ws === ws) this.receive(JSON.parse(event.data));
      };
      ws.onclose = (event) => {
        if (this.ws !== ws) return;
        this.ws = null;
        // 4401: the session ended (docs/websockets.md, "Closing"); log in again instead of retrying.
        if (event.code === 4401) {
          location.assign(`/login/?next=${encodeURIComponent(location.pathname)}`);
          return;
        }
        this.retry();
      };
    }

    retry() {
      const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
      this.attempt += 1;
      this.setState("reconnecting");
      setTimeout(() => this.connect(), base / 2 + Math.random() * base / 2);
    }

    /* Throw away everything and start from a fresh snapshot (used if the feed ever contradicts the store). */
    restart() {
      this.revision = null;
      this.inbox = []; // nothing more of this socket is applied
      if (this.ws) this.ws.close();
    }

    /* A large message arrives in parts (same type and revision, "part" i of "parts"); apply it whole. */
    assemble(message) {
      if (!message.parts) return message;
      const first = this.parts ? this.parts[0] : message;
      const expected = this.parts ? this.parts.length + 1 : 1;
      if (message.part !== expected || message.type !== first.type || message.revision !== first.revision) {
        this.parts = null;
        this.restart(); // a part went missing: never apply half a message
        return null;
      }
      this.parts = this.parts || [];
      this.parts.push(message);
      if (message.part < message.parts) return null;
      const whole = Object.assign({}, this.parts[0]);
      // The keys portal/wire.py spreads over parts: lists are concatenated, maps merged.
      for (const key of vocabulary.part_keys) {
        if (!(key in whole)) continue;
        whole[key] = Array.isArray(whole[key])
          ? this.parts.flatMap((p) => p[key] || [])
          : Object.assign({}, ...this.parts.map((p) => p[key] || {}));
      }
      this.parts = null;
      return whole;
    }

    /* History mode (?as_of=ISO): the fleet as it was, from GET /v1.0/subclouds?as_of=; no feed, no updates. */
    async showAt(asOf) {
      this.asOf = asOf;
      this.setState("history");
      const banner = document.getElementById("history-banner");
      const response = await fetch(`/v1.0/subclouds?as_of=${encodeURIComponent(asOf)}`, { credentials: "same-origin" });
      const body = await response.json();
      if (banner) {
        banner.hidden = false;
        banner.querySelector("[data-as-of]").textContent = response.ok ? formatTime(asOf) : body.error_message;
      }
      if (!response.ok) return;
      for (const step of this.applySnapshot({ subclouds: body.subclouds, faults: [], last_change: {}, revision: null })) {
        void step; // the whole fleet at once: history is shown once, not under a flood
      }
    }

    receive(part) {
      if (this.asOf) return; // never apply the live feed over history
      this.inbox.push(part);
      if (!this.draining) this.drain();
    }

    /* Applies what has arrived, in order, until SLICE_MS is spent; then continues in a task of its own. */
    drain() {
      this.draining = true;
      const started = performance.now();
      let first = true;
      while (this.current || this.inbox.length) {
        if (!this.current) {
          const message = this.assemble(this.inbox.shift());
          if (message) this.current = this.apply(message);
          continue;
        }
        if (!first && performance.now() - started > SLICE_MS) {
          this.wake.port2.postMessage(null);
          return; // still draining: messages arriving meanwhile queue up behind
        }
        first = false;
        if (this.current.next().done) this.current = null;
      }
      this.draining = false;
    }

    *apply(message) {
      if (message.type === "snapshot") {
        yield* this.applySnapshot(message);
      } else if (message.type === "window") {
        yield* this.applyWindow(message);
      } else if (message.type === "changes") {
        yield* this.applyChanges(message);
      } else {
        return;
      }
      this.attempt = 0;
      this.setState("live");
    }

    /* A map of the items (by keyOf, to valueOf), STEP items per slice, returned whole. */
    *mapOf(items, keyOf, valueOf = (item) => item) {
      const map = new Map();
      for (let i = 0; i < items.length; i++) {
        map.set(keyOf(items[i]), valueOf(items[i]));
        if (i % STEP === STEP - 1) yield;
      }
      return map;
    }

    *applySnapshot(message) {
      const subclouds = yield* this.mapOf(message.subclouds, (s) => s.name);
      const faults = yield* this.mapOf(message.faults, (f) => f.uuid);
      const lastChange = yield* this.mapOf(Object.entries(message.last_change || {}), (e) => e[0], (e) => e[1]);
      this.subclouds = subclouds;
      this.faults = faults;
      this.lastChange = lastChange;
      this.revision = message.revision;
      this.loaded = true;
      this.snapshots += 1;
      this.emit("snapshot", {});
    }

    *applyWindow(message) {
      const subclouds = yield* this.mapOf(message.subclouds, (s) => s.name);
      const faults = yield* this.mapOf(message.faults, (f) => f.uuid);
      this.subclouds = subclouds;
      this.order = message.subclouds.map((s) => s.name);
      this.faults = faults;
      this.lastChange = new Map(Object.entries(message.last_change || {}));
      this.offset = message.view.offset;
      this.matched = message.matched;
      this.counts = message.counts;
      this.revision = message.revision;
      this.loaded = true;
      if (this.fresh) this.snapshots += 1;
      this.fresh = false;
      if (message.names) {
        this.namesCache = { key: `${JSON.stringify(this.view)}@${message.revision}`, names: message.names };
        for (const resolve of this.waitingNames.splice(0)) resolve(message.names);
      }
      this.emit("window", {});
    }

    *applyChanges(message) {
      const names = new Set();
      let applied = 0;
      for (const entry of message.subclouds) {
        if (++applied % STEP === 0) yield;
        names.add(entry.name);
        if (entry.deleted) {
          this.subclouds.delete(entry.name);
          this.lastChange.delete(entry.name);
          continue;
        }
        const current = this.subclouds.get(entry.name);
        if (entry.registered) {
          const fresh = Object.assign({}, entry);
          delete fresh.registered;
          this.subclouds.set(entry.name, fresh);
        } else if (current) {
          Object.assign(current, entry);
        } else if (!this.view) {
          // A change of a subcloud this page never heard of: never show a half-known state.
          this.restart();
          return;
        }
      }
      for (const fault of message.faults_raised) this.faults.set(fault.uuid, fault);
      for (const fault of message.faults_cleared) this.faults.delete(fault.uuid);
      for (const [name, at] of Object.entries(message.last_change || {})) {
        if (this.subclouds.has(name)) this.lastChange.set(name, at);
      }
      if (message.counts) this.counts = message.counts;
      this.revision = Math.max(this.revision || 0, message.revision);
      this.emit("changes", {
        names,
        faults: message.faults_raised.length > 0 || message.faults_cleared.length > 0,
        counts: Boolean(message.counts),
      });
    }

    /* {name: {<each severity>, total}} of the active faults. */
    alarmCounts() {
      const counts = new Map();
      for (const fault of this.faults.values()) {
        let c = counts.get(fault.subcloud);
        if (!c) counts.set(fault.subcloud, (c = noAlarms()));
        c[fault.severity] = (c[fault.severity] || 0) + 1;
        c.total += 1;
      }
      return counts;
    }
  }

  /* A time as the API and the websocket spell it: ISO 8601 with a zone (the pages' <time datetime>),
   * or dcmanager's UTC "YYYY-MM-DD HH:MM:SS.ffffff". */
  function parseTime(value) {
    if (!value) return null;
    if (/(Z|[+-]\d\d:?\d\d)$/.test(value)) return new Date(value);
    return new Date(value.replace(" ", "T").slice(0, 23) + "Z");
  }

  /* The browser's zone name for a moment, e.g. "UTC", "EST", "GMT+1". One formatter, and one name per UTC
   * offset (in the browser's one zone an offset names standard or summer time): making a formatter per time
   * was the longest main-thread task of a dead-office flood (a table re-rendered every time cell). */
  let zoneFormat = null;
  const zoneNames = new Map();
  function zoneName(d) {
    const offset = d.getTimezoneOffset();
    let name = zoneNames.get(offset);
    if (name === undefined) {
      zoneFormat ||= new Intl.DateTimeFormat("en-US", { timeZoneName: "short" });
      const part = zoneFormat.formatToParts(d).find((p) => p.type === "timeZoneName");
      name = part ? part.value : "";
      zoneNames.set(offset, name);
    }
    return name;
  }

  /* Every time on every page, in local time with its zone: "14:03:27 EST" today, "2026-11-24 14:03 EST"
   * before; `full` always gives date and seconds. */
  function formatTime(value, full) {
    const d = parseTime(value);
    if (!d || isNaN(d)) return "–";
    const pad = (n) => String(n).padStart(2, "0");
    const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
    const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    const zone = zoneName(d);
    if (full) return `${day} ${time}:${pad(d.getSeconds())} ${zone}`;
    return d.toDateString() === new Date().toDateString() ? `${time}:${pad(d.getSeconds())} ${zone}` : `${day} ${time} ${zone}`;
  }

  /* A <time> element for a table cell: the short form shown, the full form on hover. */
  function timeHtml(value) {
    const d = parseTime(value);
    if (!d || isNaN(d)) return "–";
    return `<time datetime="${esc(d.toISOString())}" title="${esc(formatTime(value, true))}">${esc(formatTime(value))}</time>`;
  }

  /* Server-rendered <time datetime> elements (UTC text without script) shown like the script's own:
   * data-format="full" gets the full form, any other the short form with the full one on hover. */
  function showTimes(root) {
    for (const el of (root || document).querySelectorAll("time[datetime]")) {
      const full = formatTime(el.dateTime, true);
      if (el.dataset.format === "full") {
        el.textContent = full;
      } else {
        el.textContent = formatTime(el.dateTime);
        el.title = full;
      }
    }
  }

  const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  function esc(value) {
    return String(value === null || value === undefined ? "" : value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
  }

  function readJson(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  const vocabulary = readJson("vocabulary-data");

  /* Per-severity alarm counts, all zero. */
  function noAlarms() {
    return Object.fromEntries([...vocabulary.severity.choices.map((c) => [c.value, 0]), ["total", 0]]);
  }

  const groups = new Map(Object.entries(readJson("groups-data") || {}).map(([id, name]) => [Number(id), name]));

  const live = new LiveStatus(document.body.dataset.feed || "");
  /** Keep a filter form's non-empty values in the URL fragment, so a reload or a shared link keeps them. */
  function saveFilters(form, filters) {
    for (const el of form.elements) {
      if (!el.name) continue;
      if (el.value) filters.set(el.name, el.value);
      else filters.delete(el.name);
    }
    history.replaceState(null, "", filters.toString() ? `#${filters}` : location.pathname);
  }

  /* A REST call with the page's session: the CSRF token comes from a form of the page (the base template's
   * log-out form has one; the cookie is HttpOnly). Resolves to {ok, status, data}; data is the JSON body,
   * whose error_message says why a refusal was refused. */
  async function api(method, url, body) {
    const token = document.querySelector("[name=csrfmiddlewaretoken]");
    let response;
    try {
      response = await fetch(url, {
        method,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": token ? token.value : "" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      return { ok: false, status: 0, data: { error_message: `The request failed: ${err.message}` } };
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok && !data.error_message) data.error_message = `Refused (HTTP ${response.status}).`;
    return { ok: response.ok, status: response.status, data };
  }

  /* Asks in the page's <dialog id="confirm"> (templates/portal/_confirm.html); resolves true on Confirm. */
  function confirm(text) {
    const dialog = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent = text;
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  window.dcportal = {
    api,
    confirm,
    live, esc, formatTime, parseTime, timeHtml, showTimes, readJson, vocabulary, noAlarms, groups, saveFilters,
  };
  document.addEventListener("DOMContentLoaded", () => showTimes());

  // The alarm count in the navigation, on every page.
  live.on((kind, info, store) => {
    if (kind === "changes" && !info.faults && !info.counts) return;
    const badge = document.getElementById("nav-alarms");
    if (!badge) return;
    // A windowed page holds only the faults in view; the counts hold the fleet's.
    const n = store.view && store.counts && !store.asOf ? store.counts.alarms.total : store.faults.size;
    if (badge.textContent !== String(n)) badge.textContent = n;
    if (badge.hidden !== (n === 0)) badge.hidden = n === 0;
  });

  const asOf = new URLSearchParams(location.search).get("as_of");
  if (document.body.dataset.feed && asOf && document.getElementById("history-banner")) {
    document.addEventListener("DOMContentLoaded", () => live.showAt(asOf));
  } else if (document.body.dataset.feed) {
    // Scripts of the page (deferred, after this one) subscribe before the first message arrives.
    document.addEventListener("DOMContentLoaded", () => live.connect());
  }

  /* The time picker: a local date and time, sent as an ISO time in ?as_of=. */
  document.addEventListener("DOMContentLoaded", () => {
    const picker = document.getElementById("as-of-form");
    if (!picker) return;
    if (asOf) picker.elements.when.value = localInput(new Date(asOf));
    picker.addEventListener("submit", (event) => {
      event.preventDefault();
      const when = picker.elements.when.value;
      if (when) location.assign(`${location.pathname}?as_of=${encodeURIComponent(new Date(when).toISOString())}`);
    });
  });

  function localInput(date) {
    const pad = (n) => String(n).padStart(2, "0");
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
  }
})();
