"""Resource sampling: CPU %, RSS, open FDs and connections of each service, and of the host.

A service's figures are summed over its processes (the launcher's PIDs and their children,
e.g. PostgreSQL's backends) with psutil; a service running in a container is sampled with
docker stats (CPU % from successive one-shot samples, memory usage, PIDs). The host gets
system CPU %, used memory and, in ``extra``, memory and root-disk use in percent and the load
average. Sampling runs in a worker thread so that reading ``/proc`` never delays the load's
event loop; samples carry run offsets on the shared clock.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psutil

from chaoslab.clock import RunClock
from chaoslab.model.topology import ContainerRef
from chaoslab.system.probes import container_filters
from chaoslab.timeline import ResourceSample

HOST = "host"
"""The key of the host's samples."""


def _r2(value: float | None) -> float | None:
    """Rounded to the journal's precision (two decimals), so that samples survive a save and load unchanged."""
    return None if value is None else round(value, 2)


def docker_cpu_percent(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> float | None:
    """CPU % (100 = one core) between two docker stats payloads, as ``docker stats`` computes it (pure)."""
    if previous is None:
        return None
    try:
        cpu_now = current["cpu_stats"]["cpu_usage"]["total_usage"]
        cpu_before = previous["cpu_stats"]["cpu_usage"]["total_usage"]
        sys_now = current["cpu_stats"]["system_cpu_usage"]
        sys_before = previous["cpu_stats"]["system_cpu_usage"]
    except (KeyError, TypeError):
        return None
    online = current["cpu_stats"].get("online_cpus") or len(
        current["cpu_stats"]["cpu_usage"].get("percpu_usage") or [1]
    )
    system_delta = sys_now - sys_before
    if system_delta <= 0:
        return None
    return float(100.0 * (cpu_now - cpu_before) / system_delta * online)


def inet_socket_inodes(proc_net: str = "/proc/net") -> set[str]:
    """Inodes of every TCP/UDP (v4 and v6) socket, from one read of ``/proc/net`` per sample.

    psutil's per-process ``net_connections`` parses these same tables once per process; with
    PostgreSQL's backends and a busy host that took ~20 ms of Python per sample here, and the
    sampler's Python time is time the load's event loop waits for the GIL.
    """
    inodes: set[str] = set()
    for name in ("tcp", "tcp6", "udp", "udp6"):
        try:
            # One read (the kernel builds the table without holding our GIL), then a quick parse.
            with open(f"{proc_net}/{name}", "rb") as table:
                lines = table.read().decode("ascii", "replace").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split(None, 10)
            if len(fields) > 9:
                inodes.add(fields[9])
    return inodes


def _fd_counts(pid: int, inet: set[str]) -> tuple[int, int]:
    """``(open fds, inet sockets)`` of a process from ``/proc/<pid>/fd``."""
    fd_dir = f"/proc/{pid}/fd"
    names = os.listdir(fd_dir)
    sockets = 0
    for name in names:
        try:
            target = os.readlink(f"{fd_dir}/{name}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inet:
            sockets += 1
    return len(names), sockets


class _ProcessSet:
    """Keeps psutil.Process objects between samples so that cpu_percent measures the interval."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def sample(
        self,
        t_s: float,
        pids: Sequence[int],
        *,
        children_of: Mapping[int, list[int]] | None = None,
        inet: set[str] | None = None,
    ) -> ResourceSample:
        """One sample summed over ``pids`` and their descendants (CPU None on a process's first sight).

        ``children_of`` (a parent → children map of the host) and ``inet`` (socket inodes) can be
        computed once per sampling round and shared between services.
        """
        if children_of is None:
            children_of = _children_map()
        if inet is None:
            inet = inet_socket_inodes()
        tree: list[int] = []
        todo = list(pids)
        while todo:
            pid = todo.pop()
            if pid in tree:
                continue
            tree.append(pid)
            todo.extend(children_of.get(pid, ()))
        seen: dict[int, psutil.Process] = {}
        cpu: float | None = 0.0
        rss = fds = conns = 0
        for pid in tree:
            try:
                proc = self._procs.get(pid) or psutil.Process(pid)
                with proc.oneshot():
                    percent = proc.cpu_percent(None)
                    if pid not in self._procs:
                        cpu = None  # psutil's first reading of a process is meaningless (0.0)
                    elif cpu is not None:
                        cpu += percent
                    rss += proc.memory_info().rss
                n_fds, n_sockets = _fd_counts(pid, inet)
                fds += n_fds
                conns += n_sockets
                seen[pid] = proc
            except (psutil.Error, OSError):
                continue
        self._procs = seen
        if not seen:
            return ResourceSample(t_s=t_s)
        return ResourceSample(t_s=t_s, cpu_percent=_r2(cpu), rss_bytes=rss, open_fds=fds, connections=conns)


def _children_map() -> dict[int, list[int]]:
    """Parent PID → child PIDs for every process on the host, from one raw scan of ``/proc/*/stat``.

    (psutil's ``children``/``process_iter`` build Process objects for every process: ~45 ms of
    Python per call on this host, against ~3 ms for the raw scan.)
    """
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                data = stat.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields resume after the last ")".
        fields = data[data.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            out.setdefault(int(fields[1]), []).append(int(entry))
    return out


class ResourceSampler:
    """Samples each service's processes or container, and the host, every ``interval_s`` until a run offset."""

    def __init__(
        self,
        clock: RunClock,
        *,
        pids_of: Callable[[str], list[int]],
        services: Sequence[str],
        containers: Mapping[str, ContainerRef] | None = None,
        interval_s: float = 1.0,
        docker_client: Any = None,
        disk_path: str = "/",
    ) -> None:
        self.clock = clock
        self.pids_of = pids_of
        self.services = tuple(services)
        self.containers = dict(containers or {})
        self.interval_s = interval_s
        self.disk_path = disk_path
        self._docker = docker_client
        self._own_docker = False
        self._procs = {name: _ProcessSet() for name in self.services}
        self._previous_stats: dict[str, Mapping[str, Any]] = {}
        self._round_children: dict[int, list[int]] = {}
        self._round_inet: set[str] = set()
        self._samples: dict[str, list[ResourceSample]] = {name: [] for name in (*self.services, HOST)}
        psutil.cpu_percent(None)  # prime the host's CPU counter

    def samples(self) -> dict[str, tuple[ResourceSample, ...]]:
        """Samples so far per service and ``"host"``, in time order."""
        return {name: tuple(samples) for name, samples in self._samples.items()}

    async def run(self, end_s: float) -> None:
        """Sample every ``interval_s`` until run offset ``end_s`` (or cancellation)."""
        if not math.isfinite(end_s):
            raise ValueError("expected a finite end for resource sampling")
        clock = self.clock
        due = clock.elapsed()
        try:
            while due < end_s:
                await clock.sleep_until_offset(due)
                await asyncio.to_thread(self.sample_once)
                now = clock.elapsed()
                due += self.interval_s
                if due < now:
                    due += math.ceil((now - due) / self.interval_s) * self.interval_s
        finally:
            if self._own_docker and self._docker is not None:
                self._docker.close()
                self._docker = None
                self._own_docker = False

    def sample_once(self) -> None:
        """Take one sample of every service and of the host now (blocking; run it in a thread)."""
        children_of = self._round_children = _children_map()
        inet = self._round_inet = inet_socket_inodes()
        for name in self.services:
            t_s = round(self.clock.elapsed(), 6)
            if name in self.containers:
                sample = self._container_sample(name, t_s)
            else:
                try:
                    pids = self.pids_of(name)
                except Exception:  # the launcher may be tearing down; a gap is better than a crash
                    pids = []
                sample = self._procs[name].sample(t_s, pids, children_of=children_of, inet=inet)
            self._samples[name].append(sample)
        self._samples[HOST].append(self._host_sample(round(self.clock.elapsed(), 6)))

    def _host_sample(self, t_s: float) -> ResourceSample:
        memory = psutil.virtual_memory()
        extra: dict[str, float] = {"memory_percent": float(memory.percent)}
        try:
            extra["disk_percent"] = float(psutil.disk_usage(self.disk_path).percent)
        except OSError:
            pass
        extra["load1"] = float(os.getloadavg()[0])
        return ResourceSample(
            t_s=t_s, cpu_percent=_r2(float(psutil.cpu_percent(None))), rss_bytes=int(memory.used), extra=extra
        )

    def _container_sample(self, service: str, t_s: float) -> ResourceSample:
        try:
            if self._docker is None:
                import docker

                self._docker = docker.from_env()
                self._own_docker = True
            found = self._docker.containers.list(filters=container_filters(service, self.containers[service]))
            if not found:
                return ResourceSample(t_s=t_s)
            stats = found[0].stats(stream=False, one_shot=True)
        except Exception:  # an engine hiccup leaves a gap in the samples, not a failed run
            return ResourceSample(t_s=t_s)
        cpu = docker_cpu_percent(self._previous_stats.get(service), stats)
        self._previous_stats[service] = stats
        memory = stats.get("memory_stats") or {}
        extra: dict[str, float] = {}
        pids = (stats.get("pids_stats") or {}).get("current")
        if pids is not None:
            extra["pids"] = float(pids)
        usage = memory.get("usage")
        # Open files and connections are not in docker stats: read them from the container's
        # processes, which on a local engine are host processes (State.Pid and its children).
        fds = conns = None
        pid = ((found[0].attrs or {}).get("State") or {}).get("Pid")
        if pid:
            tree = self._procs.setdefault(service, _ProcessSet()).sample(
                t_s, [int(pid)], children_of=self._round_children, inet=self._round_inet
            )
            fds, conns = tree.open_fds, tree.connections
        return ResourceSample(
            t_s=t_s,
            cpu_percent=_r2(cpu),
            rss_bytes=int(usage) if usage is not None else None,
            open_fds=fds,
            connections=conns,
            extra=extra,
        )
