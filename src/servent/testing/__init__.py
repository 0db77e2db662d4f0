"""Helpers shared by tests, the simulator and benchmarks (fake network, virtual clock, builders)."""
