"""Agencies' tightenings of the public release policy (they can never loosen it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from crossbeat.auth.roles import Actor
from crossbeat.clock import Clock
from crossbeat.sharing._manage import (
    AgreementError,
    actor_name,
    audit_change,
    check_area_layer,
)
from crossbeat.sharing.permissions import check_permission
from crossbeat.sharing.public import DEFAULT_PUBLIC_POLICY, PublicPolicy
from crossbeat.sharing.scope import ScopeError
from crossbeat.sharing.tables import public_policy_overrides
from crossbeat.store import Store
from crossbeat.store.schema import agencies


def public_policy_of(conn: Connection, agency_id: str) -> PublicPolicy:
    """Return an owner's effective public policy: the default merged with its tightenings."""
    row = conn.execute(
        select(public_policy_overrides.c.settings).where(
            public_policy_overrides.c.agency_id == agency_id
        )
    ).first()
    if row is None:
        return DEFAULT_PUBLIC_POLICY
    return DEFAULT_PUBLIC_POLICY.merge(PublicPolicy.from_settings(row.settings))


def public_policies(conn: Connection) -> dict[str, PublicPolicy]:
    """Return the effective public policy of every agency that tightened it."""
    rows = conn.execute(select(public_policy_overrides)).mappings()
    return {
        r["agency_id"]: DEFAULT_PUBLIC_POLICY.merge(PublicPolicy.from_settings(r["settings"]))
        for r in rows
    }


def get_public_policy(store: Store, agency_id: str) -> PublicPolicy:
    """Return an agency's effective public policy."""
    with store.connect() as conn:
        return public_policy_of(conn, agency_id)


def tighten_public_policy(
    store: Store,
    agency_id: str,
    settings: Mapping[str, Any],
    *,
    by: Actor | None = None,
    clock: Clock | None = None,
) -> PublicPolicy:
    """Make an agency's public release stricter; any loosening is refused.

    Parameters
    ----------
    agency_id
        The owner agency.
    settings
        Knobs to change: ``precision``, ``time_resolution``, ``delay``, ``threshold``,
        ``fields``, ``suppress_offences`` (added to those suppressed), ``records``.
    by
        agency_admin of the agency or platform_admin; None for the local operator.

    Returns
    -------
    PublicPolicy
        The new effective policy (applies to the next read).

    Raises
    ------
    AgreementError
        For an unknown agency, unknown or malformed knobs, or any knob that would
        reveal more than the current policy; nothing was changed.
    """
    check_permission(store, by, agency_id, "change the public release policy")
    now = (clock or store.clock).now()
    with store.begin() as conn:
        known = conn.execute(select(agencies.c.id).where(agencies.c.id == agency_id)).first()
        if known is None:
            raise AgreementError([f"unknown agency {agency_id!r}"])
        current = public_policy_of(conn, agency_id)
        if not settings:
            raise AgreementError(["name at least one knob to tighten"])
        changes = dict(settings)
        if "suppress_offences" in changes:
            extra = changes["suppress_offences"]
            extra = [extra] if isinstance(extra, str) else list(extra)
            changes["suppress_offences"] = [*sorted(current.suppress_offences), *extra]
        try:
            wanted: PublicPolicy = PublicPolicy.from_settings(changes, base=current)
        except ScopeError as exc:
            raise AgreementError([str(exc)]) from exc
        if "precision" in changes:
            precision, problem = check_area_layer(conn, wanted.precision, agency_id)
            if problem:
                raise AgreementError([problem])
            wanted = dataclasses.replace(wanted, precision=precision)
        looser = wanted.looser_than(current)
        if looser:
            raise AgreementError([f"{p}: the public policy can only be tightened" for p in looser])
        stored = _diff(wanted)
        row = conn.execute(
            select(public_policy_overrides.c.version).where(
                public_policy_overrides.c.agency_id == agency_id
            )
        ).first()
        values = {
            "settings": stored,
            "version": (row.version + 1) if row else 1,
            "updated_at": now,
            "updated_by": actor_name(by),
        }
        store.upsert(
            conn,
            public_policy_overrides,
            [{"agency_id": agency_id, **values}],
            keys=["agency_id"],
            update=list(values),
        )
        details = {"change": "public_policy", "settings": wanted.to_settings()}
        audit_change(store, conn, by, "public_policy", [agency_id], details)
    return wanted


def _diff(policy: PublicPolicy) -> dict[str, Any]:
    """Return only the knobs that differ from the default (the stored override)."""
    mine, default = policy.to_settings(), DEFAULT_PUBLIC_POLICY.to_settings()
    return {k: v for k, v in mine.items() if v != default[k]}
