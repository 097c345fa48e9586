"""chaoslab's pytest plugin (fixtures and markers for chaos tests); filled in by the reports work."""
