"""Notifications: events to people, by email, Slack and the in-app inbox, through an outbox."""
