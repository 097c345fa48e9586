"""The demo system: a vector search service, an api gateway and a real PostgreSQL (docs/demo.md)."""
