"""Redundant scheduling and dispatch: observing requests, their copies at facilities, the planner."""
