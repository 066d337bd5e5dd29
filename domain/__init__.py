"""The pure domain of monetise: aggregates, value objects and rules (no I/O)."""
