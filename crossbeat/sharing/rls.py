"""PostgreSQL row-level security: the database's own check below the policy (issue #3).

Migration ``0005_sharing`` creates the role :data:`APP_ROLE` and policies that let it
SELECT only incident rows whose owner is listed in the transaction setting
``crossbeat.visible_agencies`` (child tables follow their incident) and personal data
of the owners in ``crossbeat.personal_agencies``. :func:`restricted` switches a
transaction to that role with exactly the owners a :class:`~crossbeat.sharing.policy.ReadPlan`
allows, so even a query that forgot every filter cannot see another agency's rows.
On SQLite (embedded, one process, no roles) it does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from sqlalchemy import Connection, func, select, text

APP_ROLE = "crossbeat_app"
VISIBLE_SETTING = "crossbeat.visible_agencies"
PERSONAL_SETTING = "crossbeat.personal_agencies"

#: Tables protected by a row-level policy for :data:`APP_ROLE`.
PROTECTED_TABLES: tuple[str, ...] = (
    "incidents",
    "incident_offences",
    "incident_jurisdictions",
    "incident_areas",
    "incident_versions",
    "incident_personal",
)


def _joined(ids: Iterable[str]) -> str:
    ids = sorted(set(ids))
    for agency in ids:
        if "," in agency:
            raise ValueError(f"agency id {agency!r} contains a comma")
    return ",".join(ids)


@contextmanager
def restricted(
    conn: Connection,
    visible: Iterable[str],
    personal: Iterable[str] = (),
    *,
    planner: Mapping[str, str] | None = None,
) -> Iterator[Connection]:
    """Run the enclosed queries as :data:`APP_ROLE`, seeing only ``visible`` owners' rows.

    Parameters
    ----------
    conn
        A connection inside a transaction (the settings are ``SET LOCAL``: they end with
        the transaction, also when it fails).
    visible
        Owner agencies whose incident rows may be read.
    personal
        Owner agencies whose personal data rows may be read.
    planner
        Planner settings for the enclosed queries (PostgreSQL), e.g.
        ``{"enable_bitmapscan": "off"}``: set in the same statement as the role and
        restored to their previous values in the statement that ends it.

    Yields
    ------
    Connection
        The same connection.
    """
    if conn.dialect.name != "postgresql":
        yield conn
        return
    # One round trip each way (a governed read pays every round trip: six were ~15 % of
    # a viewport page's wall time on a loaded machine). ``set_config('role', ...,
    # true)`` is ``SET LOCAL ROLE``; ``'none'`` is ``RESET ROLE``'s value.
    knobs = sorted((planner or {}).items())
    # The previous values are read before the new ones are set: PostgreSQL evaluates a
    # SELECT list in order.
    found = conn.execute(
        select(
            *(func.current_setting(name) for name, _value in knobs),
            func.set_config("role", APP_ROLE, True),
            func.set_config(VISIBLE_SETTING, _joined(visible), True),
            func.set_config(PERSONAL_SETTING, _joined(personal), True),
            *(func.set_config(name, value, True) for name, value in knobs),
        )
    ).one()
    before = [(name, found[i]) for i, (name, _value) in enumerate(knobs)]
    yield conn
    # Not in a finally: after an error the transaction is rolled back, which undoes
    # SET LOCAL by itself, and a command on an aborted transaction would mask the error.
    conn.execute(
        select(
            func.set_config("role", "none", True),
            func.set_config(VISIBLE_SETTING, "", True),
            func.set_config(PERSONAL_SETTING, "", True),
            *(func.set_config(name, value, True) for name, value in before),
        )
    )


def policy_status(conn: Connection) -> dict[str, bool]:
    """Return, for each protected table, whether row-level security is enabled (PostgreSQL).

    Returns
    -------
    dict[str, bool]
        Empty on SQLite.
    """
    if conn.dialect.name != "postgresql":
        return {}
    rows = conn.execute(
        text(
            "SELECT c.relname, c.relrowsecurity FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relname = ANY(:names)"
        ),
        {"names": list(PROTECTED_TABLES)},
    )
    return {name: bool(enabled) for name, enabled in rows}
