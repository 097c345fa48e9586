"""The real collaborators of a run: chaoslab's launcher, load generators, probes and resource sampler.

:func:`chaoslab.run.engine.run_experiment` wires these into a :class:`~chaoslab.run.execution.Run`;
a test wires fakes (:mod:`chaoslab.testing`) instead.
"""

from __future__ import annotations

import psutil

from chaoslab.load.generator import LoadGenerator
from chaoslab.load.locust.runner import LocustLoadGenerator
from chaoslab.model.loading import Experiment
from chaoslab.model.topology import TopologySpec
from chaoslab.run.parts import (
    LoadFactory,
    LoadSource,
    MeasureScope,
    ProbeFactory,
    ResourceFactory,
    RunScope,
    SystemFactory,
)
from chaoslab.system.launcher import Launcher
from chaoslab.system.probes import ProbeRunner
from chaoslab.system.processes import ServiceControl
from chaoslab.system.resources import ResourceSampler


class LaunchedSystem:
    """The topology's services, started (or reached) and stopped by chaoslab's :class:`Launcher`."""

    def __init__(self, topology: TopologySpec, scope: RunScope) -> None:
        self.launcher = Launcher(
            topology,
            run_id=scope.run_id,
            run_dir=scope.run_dir,
            refs=scope.refs,
            ledger=scope.ledger,
            on_event=scope.on_event,
        )

    @property
    def services(self) -> ServiceControl:
        """The launcher: it finds, restarts and checks the services."""
        return self.launcher

    async def start_proxy(self) -> str | None:
        """Reach the topology's Toxiproxy or start the embedded one, and create the links."""
        url = await self.launcher.start_toxiproxy()
        await self.launcher.create_links()
        return url

    async def start_services(self) -> None:
        """Start the launched services in dependency order, each healthy before the next."""
        await self.launcher.start_services()

    def pids(self, service: str) -> list[int]:
        """PIDs of a service's main process."""
        return self.launcher.pids(service)

    async def stop(self) -> list[str]:
        """Stop everything the launcher started."""
        return await self.launcher.stop_all()


def launched_system(topology: TopologySpec) -> SystemFactory:
    """The system factory of a topology: chaoslab's launcher."""
    return lambda scope: LaunchedSystem(topology, scope)


def experiment_load(experiment: Experiment) -> LoadFactory:
    """The load of an experiment: the built-in open-loop generator, or a Locust swarm (``engine: locust``)."""
    spec = experiment.spec

    def make(scope: MeasureScope) -> LoadSource:
        if spec.load.engine == "locust":
            # a Locust swarm in its own processes (Locust itself is imported there, not here)
            return LocustLoadGenerator(
                spec.load,
                scope.refs,
                scope.recorder,
                scope.clock,
                seed=scope.seed,
                ledger=scope.ledger,
                base_dir=experiment.path.parent if experiment.path is not None else None,
                experiment=spec.name,
            )
        return LoadGenerator(spec.load, scope.refs, scope.recorder, scope.clock, seed=scope.seed)

    return make


def topology_probes(topology: TopologySpec) -> ProbeFactory:
    """The health probes of a topology's services."""
    return lambda scope: ProbeRunner(topology, scope.recorder, scope.clock, services=scope.system.services)


def topology_resources(topology: TopologySpec) -> ResourceFactory:
    """The resource sampler of a topology's services and the host."""
    containers = {name: s.container for name, s in topology.services.items() if s.container is not None}
    return lambda scope: ResourceSampler(
        scope.clock, pids_of=scope.system.pids, services=list(topology.services), containers=containers
    )


def host_disk_used(path: str) -> float:
    """The used share of the filesystem holding ``path`` (0 when it cannot be read)."""
    try:
        usage = psutil.disk_usage(path)
    except OSError:
        return 0.0
    return float(usage.percent) / 100.0
