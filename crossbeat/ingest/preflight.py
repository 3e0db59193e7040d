"""What an ingest checks in the store before it reads a row.

Two mistakes would otherwise turn every row into wrong data without a word:

* an agency id that is not registered (``--agency cityp`` for ``citypd``): the ingest
  never registers an agency itself (``crossbeat agency add`` is the one way in), so
  an unknown id is refused, naming the registered ids closest first;
* a profile whose time zone differs from the agency's registered time zone: every
  local time would be shifted, and a re-ingest would make every record a new version.
  It is refused unless the difference is accepted on purpose (``accept_timezone``,
  ``crossbeat ingest --accept-timezone``). A profile whose dates are all instants
  (epoch timestamps at minute precision) never uses its time zone and is not refused
  (:func:`reads_local_times`).

:func:`store_problems` returns both kinds of problem; the ingest refuses on any,
``crossbeat profile check --db`` reports them.
"""

from __future__ import annotations

from crossbeat.agencies import closest_ids, get_agency, list_agencies
from crossbeat.ingest.profile import Profile
from crossbeat.store import Store

#: The option of ``crossbeat ingest`` that accepts a time-zone difference on purpose.
ACCEPT_TIMEZONE_FLAG = "--accept-timezone"


def unknown_agency(store: Store, agency_id: str) -> str:
    """Return the refusal for an agency id that is not registered."""
    known = [a.id for a in list_agencies(store)]
    if known:
        shown = closest_ids(agency_id, known)
        more = f" (and {len(known) - len(shown)} more)" if len(known) > len(shown) else ""
        registered = f"the registered agencies, closest first: {', '.join(shown)}{more}"
    else:
        registered = "no agency is registered yet"
    return (
        f"unknown agency {agency_id!r}: the ingest never registers an agency itself; "
        f"{registered}. Check the id, or register it first with `crossbeat agency add "
        f"{agency_id} --name NAME --timezone ZONE`"
    )


#: Date formats whose values are instants, never local wall-clock times.
_ABSOLUTE_FORMATS = ("epoch_s", "epoch_ms")


def reads_local_times(profile: Profile) -> bool:
    """Return whether the profile's time zone changes what it stores.

    It does when a date field without its own ``timezone`` may read a local
    wall-clock time (ISO 8601 without offset, a strptime pattern without ``%z``,
    ``year_month``, ``excel``, a separate time column), or takes local days or other
    periods of instants (a declared precision coarser than minute, placeholder
    times). A feed of epoch timestamps at minute precision does not: its time zone
    is never used.

    Examples
    --------
    >>> from crossbeat.ingest.profile import DateSpec
    >>> from crossbeat.ingest.profile import SourceSpec, IdSpec, OffenceSpec
    >>> base = dict(name="x", source=SourceSpec(format="csv"), id=IdSpec(columns=["id"]),
    ...             offences=[OffenceSpec(scheme="code-nibrs", code="c")])
    >>> reads_local_times(Profile(**base, occurred_from=DateSpec(column="t", formats=["epoch_ms"])))
    False
    >>> reads_local_times(Profile(**base, occurred_from=DateSpec(column="t", formats=["iso"])))
    True
    """
    for spec in (profile.occurred_from, profile.occurred_to, profile.reported_at, profile.as_of):
        if spec is None or spec.timezone is not None:
            continue
        if spec.time_column or spec.placeholder_times or spec.precision not in ("auto", "minute"):
            return True
        if any(f not in _ABSOLUTE_FORMATS and "%z" not in f for f in spec.formats):
            return True
    return False


def profile_agencies(profile: Profile, agency_id: str | None) -> list[str]:
    """Return the agencies a profile's rows go to: the one given, or the routed ones."""
    if profile.agency_column:
        return sorted(set(profile.agency_map.values()))
    chosen = agency_id or profile.agency
    return [chosen] if chosen else []


def store_problems(
    store: Store,
    profile: Profile,
    agency_id: str | None,
    *,
    accept_timezone: bool = False,
) -> list[str]:
    """Return why an ingest of ``profile`` for ``agency_id`` must be refused.

    Parameters
    ----------
    store
        The store (only read).
    profile
        The validated profile.
    agency_id
        The agency given (default: the profile's); ignored for a profile that routes
        rows by ``agency_column`` (each routed agency is checked).
    accept_timezone
        Accept a profile time zone that differs from the agency's registered one.

    Returns
    -------
    list of str
        One message per unknown agency and per time-zone difference; empty when the
        ingest may go ahead.
    """
    problems: list[str] = []
    for agency in profile_agencies(profile, agency_id):
        registered = get_agency(store, agency)
        if registered is None:
            problems.append(unknown_agency(store, agency))
            continue
        zone = profile.for_agency(agency).source.timezone
        if zone != registered.timezone and not accept_timezone and reads_local_times(profile):
            key = (
                f"agency_timezones.{agency}"
                if agency in profile.agency_timezones
                else "source.timezone"
            )
            problems.append(
                f"time zone mismatch: profile {profile.name!r} reads local times in {zone} "
                f"({key}), but agency {agency!r} is registered in {registered.timezone}. "
                f"Every local time would be stored shifted (and a re-ingest would make every "
                f"record a new version). Set {key} = {registered.timezone!r}, or correct the "
                f"agency (`crossbeat agency add {agency} --name NAME --timezone {zone}`), or "
                f"give {ACCEPT_TIMEZONE_FLAG} if the file really is in {zone}"
            )
    return problems
