"""Baton's one settings package: everything comes from the environment (see README, Configuration)."""

from .base import *  # noqa: F403
