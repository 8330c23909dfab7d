"""The facility network as data: sites, facilities, instruments and the facility-status feed.

Units stored: degrees (latitude, longitude, east positive), metres (elevation,
aperture), seconds (readout), magnitudes, UTC datetimes. The default network is
loaded from ``observatories/data/default_network.json`` by a data migration
(see ``observatories.network``).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Site(models.Model):
    """An observatory site: where it is, its time zone, and its weather prior.

    The weather prior is a two-state (clear/cloudy) Markov chain over nights:
    clear spells last ``clear_spell_nights`` on average and cloudy spells
    ``cloudy_spell_nights``, so the long-run clear fraction is
    clear / (clear + cloudy), which the data keeps equal to ``clear_fraction``.
    """

    code = models.SlugField(max_length=16, unique=True, help_text="short site code, e.g. 'lsc' (LCO's codes where LCO has one)")
    name = models.CharField(max_length=200)
    latitude_deg = models.FloatField(validators=[MinValueValidator(-90.0), MaxValueValidator(90.0)])
    longitude_deg = models.FloatField(
        validators=[MinValueValidator(-180.0), MaxValueValidator(180.0)], help_text="east positive"
    )
    elevation_m = models.FloatField(validators=[MinValueValidator(-500.0), MaxValueValidator(6000.0)])
    timezone = models.CharField(max_length=64, help_text="IANA time zone name, e.g. 'America/Santiago'")
    continent = models.CharField(max_length=32)
    clear_fraction = models.FloatField(
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)], help_text="long-run fraction of clear nights"
    )
    clear_spell_nights = models.FloatField(validators=[MinValueValidator(1.0)], help_text="mean length of a clear spell")
    cloudy_spell_nights = models.FloatField(validators=[MinValueValidator(1.0)], help_text="mean length of a cloudy spell")
    source = models.JSONField(default=dict, blank=True, help_text="citations for coordinates and weather figures")

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class Facility(models.Model):
    """A telescope at a site, driven through an adapter (a TOM facility class, by dotted path).

    ``api_url`` is the base URL of the facility's observation-portal API (the
    part before ``api/requestgroups/``). Blank means: for a simulated facility,
    Baton's own simulator at ``<BATON_BASE_URL>/sim/``, read when used (see
    ``portal_base_url``), so that moving Baton to another port or host needs no
    data change. ``api_token`` blank means: for a simulated facility, the
    simulator's token (``SIMNET_TOKEN``).
    """

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="facilities")
    telescope_class = models.CharField(max_length=16, help_text="LCO-style class naming the aperture: '1m0', '0m4'")
    also_serves = models.JSONField(
        default=list, blank=True,
        help_text="request classes this facility also takes copies of, e.g. ['1m0'] for a larger telescope of another "
        "network standing in for a 1-m (a Gemini or LT copy of a 1-m request)",
    )
    enclosure = models.CharField(
        max_length=16, blank=True, help_text="the portal's enclosure code at the site, e.g. 'doma' (location.enclosure)"
    )
    telescope = models.CharField(
        max_length=16, blank=True, help_text="the portal's telescope code in the enclosure, e.g. '1m0a' (location.telescope)"
    )
    aperture_m = models.FloatField(validators=[MinValueValidator(0.01), MaxValueValidator(50.0)])
    adapter = models.CharField(
        max_length=200,
        default="observatories.adapters.PortalFacility",
        help_text="dotted path of the TOM facility class that drives this facility",
    )
    api_url = models.URLField(max_length=500, blank=True, help_text="portal API base URL; blank: Baton's simulator")
    api_token = models.CharField(max_length=200, blank=True, help_text="portal API token; blank: the simulator's")
    archive_url = models.URLField(
        max_length=500, blank=True,
        help_text="science archive API base URL (frames by request id, LCO's archive API); blank: the simulator's",
    )
    default_proposal = models.CharField(
        max_length=64, blank=True,
        help_text="the proposal used for teams whose allocation names none here (a network-wide proposal Baton runs "
        "under); blank: only teams with their own proposal may use this facility",
    )
    tom_parameters = models.JSONField(
        default=dict, blank=True,
        help_text="for a TOM facility module that is not a portal: the fixed fields of its observation form "
        "(e.g. Gemini's program and observation id); Baton fills in target, window and exposures",
    )
    enabled = models.BooleanField(default=True)
    simulated = models.BooleanField(default=True, help_text="driven by Baton's simulated network")

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "facilities"

    def __str__(self) -> str:
        return self.code

    @property
    def portal_base_url(self) -> str:
        """The portal API base URL, ending in '/': ``api_url``, or the simulator's when blank."""
        url = self.api_url or f"{settings.BATON_BASE_URL.rstrip('/')}/sim/"
        return url if url.endswith("/") else url + "/"

    @property
    def archive_base_url(self) -> str:
        """The science archive API base URL, ending in '/': ``archive_url``, or the simulator's archive when blank."""
        url = self.archive_url or f"{settings.BATON_BASE_URL.rstrip('/')}/sim/archive/"
        return url if url.endswith("/") else url + "/"

    @property
    def location_key(self) -> str:
        """The portal's telescope key ``site.enclosure.telescope`` (as its telescope states are keyed), or the code."""
        if self.enclosure and self.telescope:
            return f"{self.site.code}.{self.enclosure}.{self.telescope}"
        return self.code

    @property
    def chance_key(self) -> str:
        """What makes two facilities one chance: a portal's scheduler places a group on any telescope of the class
        at the site, so telescopes of one class at one site behind one portal share this key."""
        from observatories.portal.facility import speaks_portal_api_path

        if speaks_portal_api_path(self.adapter):
            return f"{self.portal_base_url}|{self.site.code}|{self.telescope_class}"
        return self.code

    @property
    def portal_token(self) -> str:
        """The portal API token: ``api_token``, or the simulator's for a simulated facility."""
        if self.api_token:
            return self.api_token
        if self.simulated:
            from observatories.simnet.auth import simnet_token

            return simnet_token()
        return ""


class Instrument(models.Model):
    """An instrument on a facility, with what the planner needs to size an observation."""

    KIND_CHOICES = [("imaging", "imaging"), ("spectra", "spectra")]

    facility = models.ForeignKey(Facility, on_delete=models.CASCADE, related_name="instruments")
    code = models.SlugField(max_length=64, unique=True, help_text="Baton's own code for this instrument on this facility")
    instrument_type = models.CharField(
        max_length=64, blank=True,
        help_text="the portal's instrument type, shared by every telescope that carries one (e.g. '1M0-SCICAM-SINISTRO')",
    )
    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    filters = models.JSONField(
        default=list, blank=True, help_text="codes of the instrument's selectable optical elements, e.g. ['V', 'rp']"
    )
    optical_element_group = models.CharField(
        max_length=32, default="filter", help_text="the key of the selectable element in optical_elements: 'filter', 'slit'"
    )
    fixed_optical_elements = models.JSONField(
        default=dict, blank=True, help_text="other optical elements always sent, e.g. {'grating': 'SYZY_400'}"
    )
    readout_modes = models.JSONField(default=list, blank=True, help_text="the portal's readout mode codes")
    default_readout_mode = models.CharField(max_length=64, blank=True, help_text="blank: the portal's default")
    acquisition_mode = models.CharField(max_length=32, default="OFF", help_text="OFF for imagers; WCS or BRIGHTEST for slits")
    guiding_mode = models.CharField(max_length=32, default="ON")
    guiding_optional = models.BooleanField(default=True)
    readout_s = models.FloatField(validators=[MinValueValidator(0.0)], help_text="readout overhead per exposure, s")
    limiting_mag_60s = models.FloatField(help_text="5-sigma point-source limit in 60 s, dark sky, airmass 1")
    pixel_scale = models.FloatField(null=True, blank=True, help_text="arcsec per pixel")

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    @property
    def portal_instrument_type(self) -> str:
        """The instrument type the portal knows (``instrument_type``; Baton's code upper-cased when unset)."""
        return self.instrument_type or self.code.upper()


class FacilityStatus(models.Model):
    """One observed state of a facility, from its adapter (the facility-status feed).

    A new row is written when the state or reason changes; a poll that finds
    the same state only moves ``fetched_at`` forward. ``observed_at`` is when the
    facility says the state began (or when Baton first saw it); ``fetched_at``
    when Baton last confirmed it. Read it through
    ``observatories.selectors.facility_status_current``, which turns a stale row
    into UNKNOWN.
    """

    class State(models.TextChoices):
        AVAILABLE = "available"
        WEATHER = "weather"
        DOWNTIME = "downtime"
        UNKNOWN = "unknown"

    facility = models.ForeignKey(Facility, on_delete=models.CASCADE, related_name="statuses")
    state = models.CharField(max_length=16, choices=State.choices)
    reason = models.CharField(max_length=500, blank=True)
    observed_at = models.DateTimeField()
    fetched_at = models.DateTimeField()

    class Meta:
        ordering = ["-fetched_at", "-id"]
        indexes = [models.Index(fields=["facility", "-fetched_at", "-id"], name="facilitystatus_latest")]
        verbose_name_plural = "facility statuses"

    def __str__(self) -> str:
        return f"{self.facility_id}: {self.state}"
