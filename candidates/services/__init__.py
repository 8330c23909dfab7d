"""The services of `candidates`: batches in, ingest, filters and regions, triggers, vetting."""

from .batches import batch_process, batch_receive, batches_reconcile, envelope_count
from .ingest import IngestResult, alerts_ingest, match_radius_arcsec
from .sky_index import target_sky_backfill, target_sky_update
from .triggers import followup_request, trigger_evaluate, trigger_fire
from .vetting import LabelInvalid, LabelRefused, label_set
from .watch import FilterInvalid, RegionInvalid, filter_create, filter_update, region_create, region_update

__all__ = [
    "FilterInvalid",
    "IngestResult",
    "LabelInvalid",
    "LabelRefused",
    "RegionInvalid",
    "alerts_ingest",
    "batch_process",
    "batch_receive",
    "batches_reconcile",
    "envelope_count",
    "filter_create",
    "filter_update",
    "followup_request",
    "label_set",
    "match_radius_arcsec",
    "region_create",
    "region_update",
    "target_sky_backfill",
    "target_sky_update",
    "trigger_evaluate",
    "trigger_fire",
]
