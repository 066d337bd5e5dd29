"""The monetise test suite."""
