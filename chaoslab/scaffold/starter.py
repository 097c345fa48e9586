"""The commented starter topology and experiment that ``chaoslab init`` writes without ``--from-compose``."""

from __future__ import annotations

from pathlib import Path

from chaoslab.scaffold.generate import TOPOLOGY_FILE, Scaffold

STARTER_TOPOLOGY = """\
# A starter topology, written by `chaoslab init`: the services of your system, how chaoslab reaches
# (or starts) them, and the links a network fault acts on. Every field: docs/experiment-format.md.
name: my-system
description: "an app on :8080 that uses a database on :5432 (EDIT: your services)"
# `embedded`: chaoslab starts its own Toxiproxy-compatible server for the links below.
# Or the URL of a running Toxiproxy: http://127.0.0.1:8474
toxiproxy: embedded
parameters:
  app_port: 8080          # --set app_port=9090 moves it without editing this file
  db_port: 5432
  db_link_port: 15432     # where the app must connect to reach the database through the link
services:
  app:
    description: the service your users call
    url: http://127.0.0.1:${app_port}
    probe: {type: http, url: "http://127.0.0.1:${app_port}/health", interval: 500ms, timeout: 1s}
    depends_on: [db]
    # Already running (started by you, systemd, Compose...)? Leave `launch` out. To let chaoslab
    # start it for each run (and stop it after), give the command; ${link:app->db} is the address
    # the app must use for the database so the link's faults reach it:
    # launch:
    #   kind: process
    #   command: ["${python}", "-m", "myapp", "--port", "${app_port}", "--db", "${link:app->db}"]
    #   restart: on-failure
  db:
    description: the database
    address: 127.0.0.1:${db_port}
    probe: {type: tcp, address: "127.0.0.1:${db_port}", interval: 500ms, timeout: 1s}
    # a PostgreSQL that chaoslab starts in the run directory instead:
    # launch: {kind: postgres, port: "${db_port}"}
links:
  # The app must talk to the database through `listen` (not the database's own port): point its
  # configuration at 127.0.0.1:${db_link_port}. Faults on the link (latency, down, ...) act there.
  app->db: {listen: "127.0.0.1:${db_link_port}", upstream: "127.0.0.1:${db_port}"}
"""

STARTER_EXPERIMENT = """\
# A starter experiment, written by `chaoslab init`. Edit the hypothesis, the requests and the
# fault, then `chaoslab check` it and run it (`--quick` for a short run). Fields: docs/experiment-format.md.
name: app-db-latency
description: >
  Hypothesis: ${latency} of extra latency between the app and its database slows the app's
  requests but fails none of them, and within 30 s of removing it everything is back within its
  baseline band. EDIT: say what you expect of your system.
topology: topology.yaml
parameters:
  latency: 300ms
  rate: 10/s
load:
  rate: ${rate}              # open loop: requests go at their scheduled times
  mix:
    # EDIT: the requests your users make (method, url, json, headers, expect_status, weight)
    - {name: home, signal: "app:home", url: "${service:app}/", timeout: 5s}
phases: {warmup: 5s, baseline: 20s, fault: 20s}
faults:
  - {kind: latency, target: "app->db", latency: "${latency}"}
steady_state:
  # a window is healthy when its p95 is within max(2 × baseline, baseline + 100 ms) and its error
  # rate within baseline + 1 point; probes are judged by an absolute 500 ms
  band: {p95_margin: 100ms}
  bands:
    "probe:*": {p95_max: 500ms}
expected_impact: ["app:*"]      # what may degrade; anything else degrading is a cascade
recovery: {budget: 30s, stable_for: 5s}
quick:
  phases: {warmup: 2s, baseline: 6s, fault: 6s}
  recovery: {budget: 15s, stable_for: 2s}
"""


def scaffold_starter(out_dir: Path) -> Scaffold:
    """The commented starter topology and experiment for ``out_dir`` (nothing is written here)."""
    experiment_file = "app-db-latency.yaml"
    text = STARTER_EXPERIMENT.replace(
        "then `chaoslab check` it", f"then `chaoslab check {(out_dir / experiment_file).as_posix()}`"
    )
    return Scaffold({TOPOLOGY_FILE: STARTER_TOPOLOGY, experiment_file: text}, experiment_file)
