"""Simulated devices, nodes and scenarios, so the whole system runs without hardware."""
