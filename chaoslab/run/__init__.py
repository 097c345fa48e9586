"""The run: orchestrator, launcher, load generator, probes, recorder, ledger (all I/O lives here)."""
