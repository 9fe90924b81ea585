"""Simulated serial parts behind pseudo-terminals, each with the faults real ones have."""
