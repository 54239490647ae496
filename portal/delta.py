"""Merging log rows into what a socket is sent: later values win per subcloud, faults by uuid."""

from dataclasses import dataclass, field

from .wire import encode


def _subcloud_of(entity_instance_id):
    """"subcloud=sc1.resource=dcorch" -> "sc1" (names cannot hold a dot: subclouds.names)."""
    return entity_instance_id.removeprefix("subcloud=").split(".", 1)[0]


@dataclass
class Delta:
    """Changes merged per subcloud (later values win) and per fault, up to `revision`."""

    revision: int = 0
    subclouds: dict = field(default_factory=dict)
    raised: dict = field(default_factory=dict)
    cleared: dict = field(default_factory=dict)
    last_change: dict = field(default_factory=dict)

    def __bool__(self):
        return self.revision > 0

    def _entry(self, entry):
        name = entry["name"]
        current = self.subclouds.get(name)
        if current is None or entry.get("deleted") or entry.get("registered"):
            self.subclouds[name] = dict(entry)
        else:
            current.update(entry)

    def _faults(self, raised, cleared):
        for fault in raised:
            self.raised[fault["uuid"]] = fault
        for fault in cleared:
            # Raised and cleared before anyone was told: nothing to tell.
            if self.raised.pop(fault["uuid"], None) is None:
                self.cleared[fault["uuid"]] = fault

    def add_row(self, row):
        self.revision = max(self.revision, row.id)
        if row.entry is not None:
            self._entry(row.entry)
        self._faults(row.raised, row.cleared)
        self.last_change[row.name] = row.at

    def merge(self, other):
        self.revision = max(self.revision, other.revision)
        for entry in other.subclouds.values():
            self._entry(entry)
        self._faults(other.raised.values(), other.cleared.values())
        self.last_change.update(other.last_change)

    def in_view(self, names):
        """The part of this delta about the subclouds named (a windowed socket's view)."""
        part = Delta(self.revision)
        part.subclouds = {n: e for n, e in self.subclouds.items() if n in names}
        part.raised = {u: f for u, f in self.raised.items() if f["subcloud"] in names}
        part.cleared = {u: f for u, f in self.cleared.items() if _subcloud_of(f["entity_instance_id"]) in names}
        part.last_change = {n: at for n, at in self.last_change.items() if n in names}
        return part

    def message(self):
        return {
            "type": "changes",
            "revision": self.revision,
            "subclouds": list(self.subclouds.values()),
            "faults_raised": list(self.raised.values()),
            "faults_cleared": list(self.cleared.values()),
            "last_change": self.last_change,
        }

    @classmethod
    def of(cls, rows, after=0):
        delta = cls()
        for row in rows:
            if row.id > after:
                delta.add_row(row)
        return delta


class Batch:
    """Rows read together by the feed, merged once and encoded once for every socket that wants all of them."""

    def __init__(self, rows):
        self.rows = rows
        self.first = rows[0].id
        self.revision = rows[-1].id
        self.delta = Delta.of(rows)
        self._encoded = None

    def encoded(self):
        """The whole batch as websocket texts (see encode)."""
        if self._encoded is None:
            self._encoded = encode(self.delta.message())
        return self._encoded

    def after(self, revision):
        """The part of this batch after `revision`, as a Delta (shared: do not change it)."""
        if revision < self.first:
            return self.delta
        return Delta.of(self.rows, after=revision)
