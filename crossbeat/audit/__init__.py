"""The tamper-evident audit log (issue #3).

Every read, detail view, export, change, sharing decision, login and refused attempt
is appended as an :class:`AuditEvent` to a hash-chained log whose entry hashes are the
leaves of an RFC 6962 Merkle tree. :func:`checkpoint` signs tree heads with Ed25519;
:func:`verify` finds any modified, deleted, inserted or re-ordered event;
:func:`events_for_owner` is the access log an owner agency's auditors read.
"""

from crossbeat.audit.auth_sink import auth_sink
from crossbeat.audit.checkpoint import AuditIntegrityError, checkpoint, checkpoint_if_due
from crossbeat.audit.events import Action, AuditEvent, Outcome
from crossbeat.audit.heads import (
    TreeHead,
    latest_head,
    list_heads,
    prove_consistency,
    prove_inclusion,
    read_head,
    write_head,
)
from crossbeat.audit.keys import (
    AuditKeyError,
    generate_signing_key,
    load_signing_key,
    load_verify_key,
    write_signing_key,
)
from crossbeat.audit.log import (
    AuditError,
    append,
    append_many,
    events_by_actor,
    events_for_owner,
    get_event,
    iter_events,
    log_size,
)
from crossbeat.audit.verify import Problem, VerifyReport, verify

__all__ = [
    "Action",
    "AuditError",
    "AuditEvent",
    "AuditIntegrityError",
    "AuditKeyError",
    "Outcome",
    "Problem",
    "TreeHead",
    "VerifyReport",
    "append",
    "append_many",
    "auth_sink",
    "checkpoint",
    "checkpoint_if_due",
    "events_by_actor",
    "events_for_owner",
    "generate_signing_key",
    "get_event",
    "iter_events",
    "latest_head",
    "list_heads",
    "load_signing_key",
    "load_verify_key",
    "log_size",
    "prove_consistency",
    "prove_inclusion",
    "read_head",
    "verify",
    "write_head",
    "write_signing_key",
]
