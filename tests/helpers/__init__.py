"""Helpers shared by tests (data generators, process and port utilities)."""
