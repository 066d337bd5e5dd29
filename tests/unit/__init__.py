"""Unit tests: the domain on its own, with no I/O."""
