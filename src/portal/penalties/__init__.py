"""Penalties for leaking or reselling customer files (seed 000), recorded by leaders with evidence."""
