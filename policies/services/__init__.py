"""Services of `policies`: functions that change things (keyword-only, typed, ``<entity>_<action>``)."""

from .audit import decision_record
from .claims import (
    Contributor,
    claim_conflict_resolve,
    claim_consent,
    claim_contributors,
    claim_propose,
    claim_release,
    claims_expire_due,
    publication_report,
)
from .errors import PolicyConflict, PolicyForbidden, PolicyInvalid, UsageConflict
from .ledger import breach_record, ledger_add, team_priority_factor
from .ownership import (
    data_forget,
    data_record_ownership,
    data_release_due,
    grants_reconcile,
    policy_apply,
    target_interests_record,
    target_record_interest,
    uploaded_datum_record,
)
from .policy import policy_merge, policy_update
from .teams import audience_members_sync, team_create, team_member_remove, team_member_set
from .time import AllocationDecision, allocation_check, proposal_for, usage_record

__all__ = [
    "AllocationDecision",
    "Contributor",
    "PolicyConflict",
    "PolicyForbidden",
    "PolicyInvalid",
    "UsageConflict",
    "allocation_check",
    "proposal_for",
    "audience_members_sync",
    "breach_record",
    "claim_conflict_resolve",
    "claim_consent",
    "claim_contributors",
    "claim_propose",
    "claim_release",
    "claims_expire_due",
    "data_forget",
    "data_record_ownership",
    "uploaded_datum_record",
    "data_release_due",
    "decision_record",
    "grants_reconcile",
    "ledger_add",
    "policy_apply",
    "policy_merge",
    "policy_update",
    "publication_report",
    "target_interests_record",
    "target_record_interest",
    "team_create",
    "team_member_remove",
    "team_member_set",
    "team_priority_factor",
    "usage_record",
]
