"""Counting the agencies' offences for the crosswalk coverage report: an audited read.

The coverage report (:mod:`crossbeat.taxonomy.coverage`) shows, per agency and offence
scheme, how many stored offences the crosswalk maps and which local codes (with their
descriptions) it misses. That is a read of each agency's incident data, so it is done
here, next to the other reads, and written to the audit log: one ``read`` event
(resource ``offence_coverage``) per agency counted, owned by that agency, with the
number of offences counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Integer, case, func, select

from crossbeat.audit import Action, AuditEvent, append_many
from crossbeat.store import Store
from crossbeat.store.schema import incident_offences, incidents
from crossbeat.taxonomy.coverage import CoverageReport, build_report

if TYPE_CHECKING:
    from crossbeat.auth.roles import Actor


def read_coverage(
    store: Store,
    agency_id: str | None = None,
    *,
    with_suggestions: bool = True,
    by: Actor | None = None,
) -> CoverageReport:
    """Count mapped and unmapped offences per agency and scheme, and audit the read.

    The read is the local operator's (the ``crossbeat taxonomy coverage`` command) when
    ``by`` is None: the events' actor is ``system``. A web endpoint must first gain a
    permission check here.

    Parameters
    ----------
    store
        The store to read.
    agency_id
        Only this agency's offences (default: every agency).
    with_suggestions
        Attach the best NIBRS suggestion to each unmapped local code.
    by
        The signed-in user reading, or None for the local operator.

    Returns
    -------
    CoverageReport
        One entry per (agency, scheme) of live incidents, returned once the audit
        events are committed. A read that counted nothing is still recorded.
    """
    o, i = incident_offences, incidents
    live: ColumnElement[bool] = i.c.withdrawn_at.is_(None)
    if agency_id is not None:
        live = live & (i.c.agency_id == agency_id)
    joined = o.join(i, i.c.id == o.c.incident_id)
    totals_q = (
        select(
            i.c.agency_id,
            o.c.scheme,
            func.count().label("total"),
            func.sum(case((o.c.match.is_(None), 1), else_=0), type_=Integer).label("unmapped"),
        )
        .select_from(joined)
        .where(live)
        .group_by(i.c.agency_id, o.c.scheme)
    )
    codes_q = (
        select(
            i.c.agency_id,
            o.c.scheme,
            o.c.local_code,
            func.max(o.c.local_description).label("description"),
            func.count().label("n"),
        )
        .select_from(joined)
        .where(live & o.c.match.is_(None))
        .group_by(i.c.agency_id, o.c.scheme, o.c.local_code)
    )
    with store.begin() as conn:
        totals = conn.execute(totals_q).all()
        code_rows = conn.execute(codes_q).all()
        report = build_report(totals, code_rows, with_suggestions=with_suggestions)
        counted: dict[str | None, int] = {}
        for s in report.schemes:
            counted[s.agency_id] = counted.get(s.agency_id, 0) + s.total
        if not counted:
            counted[agency_id] = 0
        append_many(
            store,
            [
                AuditEvent(
                    action=Action.READ,
                    actor=by.user_id if by is not None else "system",
                    actor_agency=by.agency_id if by is not None else None,
                    resource_type="offence_coverage",
                    owner_agencies=(owner,) if owner else (),
                    record_count=n,
                    details={
                        "request": {"agency": agency_id} if agency_id else {},
                        "schemes": [s.scheme for s in report.schemes if s.agency_id == owner],
                    },
                )
                for owner, n in sorted(counted.items(), key=lambda item: item[0] or "")
            ],
            conn=conn,
        )
    return report
