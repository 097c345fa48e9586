"""A small shop for the chaoslab guide (docs/your-system.md): web → catalog → PostgreSQL."""
