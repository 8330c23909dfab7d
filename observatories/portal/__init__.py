"""Observation portals (LCO's request-group API): the HTTP client, the payload it accepts, and the TOM facility class."""
