"""The run: the engine, the ledger and rollback, abort rules, safety checks and notes."""
