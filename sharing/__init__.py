"""Sharing out: data a team's policy releases, pushed to partner TOMs / Batons and Hermes through an outbox."""
