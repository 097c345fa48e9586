"""Safety checks made before anything runs: every network address must be on loopback.

The loader already refuses links, service URLs and a Toxiproxy URL off loopback; this also
covers the addresses the load and the probes will contact, after ``${...}`` references are
resolved. A topology opts out with ``allow_non_loopback: true``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from chaoslab.errors import SafetyError
from chaoslab.model.loading import Experiment, resolve_runtime_refs, runtime_refs
from chaoslab.model.references import without_secret_refs
from chaoslab.model.topology import is_loopback

_HINT = "set allow_non_loopback: true in the topology to allow it"


def check_network_safety(experiment: Experiment) -> None:
    """Raise SafetyError (exit 2) for a load or probe address outside loopback."""
    topology = experiment.topology
    if topology.allow_non_loopback:
        return
    # only hosts are checked: ${env:...} and ${file:...} (user information, tokens) stay unread
    refs = {
        name: without_secret_refs(value)
        for name, value in runtime_refs(
            topology, {"run_dir": "/", "state_dir": "/", "toxiproxy": "http://127.0.0.1:8474"}
        ).items()
    }
    requests = list(experiment.spec.load.mix)
    if experiment.spec.load.login is not None:
        requests.append(experiment.spec.load.login)  # type: ignore[arg-type]
    for index, request in enumerate(requests):
        url = resolve_runtime_refs(without_secret_refs(request.url), refs)
        host = urlsplit(url).hostname or ""
        if not is_loopback(host):
            where = f"load.mix.{index}.url" if index < len(experiment.spec.load.mix) else "load.login.url"
            raise SafetyError(f"{url!r} is not on loopback; {_HINT}", field=where, file=_file(experiment))
    for name, service in topology.services.items():
        probe = service.probe
        if probe is None:
            continue
        if probe.url is not None:
            host = urlsplit(resolve_runtime_refs(without_secret_refs(probe.url), refs)).hostname or ""
        elif probe.address is not None:
            host = probe.address.rpartition(":")[0]
        elif probe.dsn is not None:
            host = urlsplit(resolve_runtime_refs(without_secret_refs(probe.dsn), refs)).hostname or ""
        else:
            continue
        if not is_loopback(host):
            raise SafetyError(f"probe address {host!r} is not on loopback; {_HINT}", field=f"services.{name}.probe")


def _file(experiment: Experiment) -> str | None:
    return str(experiment.path) if experiment.path is not None else None
