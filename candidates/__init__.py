"""Broker candidates in: alert packets (push, poll, stream), filters, watch regions and triggers."""
