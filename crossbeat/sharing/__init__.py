"""Sharing governance (issue #3): agreements, the one read policy, the public release.

Modules: :mod:`~crossbeat.sharing.scope` (fields, precision levels, offences, purposes),
:mod:`~crossbeat.sharing.model` (grantees, scopes, agreements as data),
:mod:`~crossbeat.sharing.agreements` (create, revoke, list),
:mod:`~crossbeat.sharing.permissions` (who may manage sharing), :mod:`~crossbeat.sharing.groups`
(named groups of agencies), :mod:`~crossbeat.sharing.overrides` (agencies' tightenings of
the public policy), :mod:`~crossbeat.sharing.public` (the public release policy and
anchor points), :mod:`~crossbeat.sharing.release` (releasing each owner's counts so that no
combination of requests recovers a hidden one), :mod:`~crossbeat.sharing.noise`
(differentially private counts and privacy budgets),
:mod:`~crossbeat.sharing.standins` (synthetic preview records),
:mod:`~crossbeat.sharing.request` (viewer and request),
:mod:`~crossbeat.sharing.policy` (the pure decision: viewer + request -> plan with
reasons), :mod:`~crossbeat.sharing.rules` (one grant's filter and transformation),
:mod:`~crossbeat.sharing.reads` (THE read entry points),
:mod:`~crossbeat.sharing.compiled` (the plan compiled to SQL for aggregates),
:mod:`~crossbeat.sharing.arrays` (visible incidents as numpy columns),
:mod:`~crossbeat.sharing.quarantine` (the audited read of quarantined rows),
:mod:`~crossbeat.sharing.coverage` (the audited count of offences for crosswalk coverage),
:mod:`~crossbeat.sharing.streams` (live streams), :mod:`~crossbeat.sharing.preview`,
:mod:`~crossbeat.sharing.rls` (PostgreSQL row-level security),
:mod:`~crossbeat.sharing.demo` (the demo region's agreements) and
:mod:`~crossbeat.sharing.tables`.

Nothing is imported at import time (:mod:`crossbeat.store.schema` imports
:mod:`crossbeat.sharing.tables`); the names below load their module on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Viewer": "policy",
    "ViewerKind": "policy",
    "ReadRequest": "policy",
    "RequestError": "policy",
    "Decision": "policy",
    "ReadPlan": "policy",
    "plan": "policy",
    "read_incidents": "reads",
    "aggregate": "reads",
    "count_incidents": "reads",
    "analysis_arrays": "arrays",
    "AnalysisArrays": "arrays",
    "read_detail": "reads",
    "read_quarantine": "quarantine",
    "read_coverage": "coverage",
    "LiveStream": "streams",
    "ReadResult": "reads",
    "AggregateResult": "reads",
    "DetailResult": "reads",
    "StreamUpdate": "streams",
    "preview": "preview",
    "Preview": "preview",
    "Agreement": "model",
    "Grantee": "model",
    "create_agreement": "agreements",
    "revoke_agreement": "agreements",
    "list_agreements": "agreements",
    "get_agreement": "agreements",
    "AgreementError": "_manage",
    "check_permission": "permissions",
    "create_group": "groups",
    "set_members": "groups",
    "list_groups": "groups",
    "PublicPolicy": "public",
    "DEFAULT_PUBLIC_POLICY": "public",
    "get_public_policy": "overrides",
    "tighten_public_policy": "overrides",
    "Purpose": "scope",
    "demo_agreements": "demo",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'crossbeat.sharing' has no attribute {name!r}")
    return getattr(import_module(f"crossbeat.sharing.{module}"), name)
