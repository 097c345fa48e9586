"""The system under test: launching and stopping its services (processes, PostgreSQL, containers),
process identity, readiness and health probes, and resource sampling."""
