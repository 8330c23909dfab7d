"""The facility network: sites, facilities, adapters, visibility and scheduling."""

from observatories.astro_offline import configure_offline_astropy

configure_offline_astropy()
