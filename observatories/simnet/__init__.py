"""Baton's simulated observatory network: an LCO-style observation portal served under ``/sim/``."""
