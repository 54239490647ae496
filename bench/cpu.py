"""Where the CPU goes during a phase: seconds of CPU per process, against wall time x cores.

On a 2-core machine a flood is CPU-bound across processes (daphne, the state
workers, PostgreSQL's backends, the feed, the load generator), so the first
question about a slow phase is which process burns the cores. Cheap: two reads
of /proc/<pid>/stat (utime + stime) per process, before and after.

PostgreSQL's processes are found through pg_stat_activity: client backends by
application_name (each dcportal process names its connections), the rest
(walwriter, checkpointer, ...) by backend_type. A process that starts and ends
inside the phase is not counted; the machine's busy time (/proc/stat) shows
what is left over, including other users of the machine.
"""

import os
import time

TICK = os.sysconf("SC_CLK_TCK")


def _proc_seconds(pid):
    """utime + stime of a live process in seconds (all its threads), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def _children():
    """{parent pid: [child pids]} of every process on the machine."""
    tree = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _with_descendants(pid, tree):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(tree.get(p, ()))
    return out


def _machine_busy():
    """Busy CPU seconds of the whole machine (every core), from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / TICK


def _postgres_pids(database):
    """{pid: label} of PostgreSQL's processes: our database's client backends by application_name, the rest by type."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pid, application_name, backend_type, datname FROM pg_stat_activity")
        rows = cur.fetchall()
    labels = {}
    for pid, app, kind, datname in rows:
        if kind == "client backend":
            if datname != database:
                continue
            labels[pid] = f"postgres: {app or '(unnamed)'}"
        else:
            labels[pid] = f"postgres: {kind}"
    return labels


class CpuMeter:
    """CPU seconds per labelled process between start() and stop().

    processes: {label: pid} of our own processes (their descendants are counted with them, e.g. Celery's
    prefork children); this process is counted as `self_label`.
    """

    def __init__(self, processes, database, self_label="bench client (POSTs, websocket client)"):
        self.processes, self.database, self.self_label = dict(processes), database, self_label

    def _sample(self):
        tree = _children()
        pids = {}
        for label, pid in self.processes.items():
            for p in _with_descendants(pid, tree):
                pids[p] = label
        pids[os.getpid()] = self.self_label
        for pid, label in _postgres_pids(self.database).items():
            pids.setdefault(pid, label)
        return {pid: (label, _proc_seconds(pid)) for pid, label in pids.items()}

    def start(self):
        self.before = self._sample()
        self.busy_before = _machine_busy()
        self.started = time.perf_counter()
        return self

    def stop(self):
        """{"wall_s", "cores", "machine_busy_s", "per_process": {label: cpu seconds}} for the measured span."""
        wall = time.perf_counter() - self.started
        busy = _machine_busy() - self.busy_before
        after = self._sample()
        per = {}
        for pid, (label, seconds) in after.items():
            if seconds is None:
                continue
            before = self.before.get(pid, (label, 0.0))[1] or 0.0
            per[label] = per.get(label, 0.0) + seconds - before
        return {"wall_s": wall, "cores": os.cpu_count(), "machine_busy_s": busy,
                "per_process": dict(sorted(per.items(), key=lambda kv: -kv[1]))}


def rows(cpu, phase):
    """Report rows (figure, value, note) for a CpuMeter.stop() result: each process's share of the cores."""
    capacity = cpu["wall_s"] * cpu["cores"]
    ours = sum(cpu["per_process"].values())
    out = [(f"CPU ({phase}): wall s x {cpu['cores']} cores = capacity, s", capacity, "")]
    for label, seconds in cpu["per_process"].items():
        if seconds >= 0.005:
            out.append((f"  CPU s: {label}", seconds, f"{seconds / capacity:.0%} of capacity"))
    out += [
        ("  CPU s: sum of the processes above", ours, f"{ours / capacity:.0%} of capacity"),
        ("  CPU s: machine busy (all processes, /proc/stat)", cpu["machine_busy_s"],
         f"{cpu['machine_busy_s'] / capacity:.0%} of capacity; the rest is others' or short-lived"),
    ]
    return out
