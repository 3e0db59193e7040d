"""The demo region's sharing agreements: a realistic set the demo build loads.

* Riverton PD and the Clackmer County Sheriff share every offence with each other at
  exact precision, without personal data (sensitive incidents included: this is
  police-to-police sharing for analysis, operations and investigations).
* Metro Transit Police shares every offence with both at block precision with a
  24-hour delay, and vehicle crime at exact precision without delay with the
  ``auto-theft-taskforce`` group (both of them) for investigations.
* All three share with the public under the default public release policy.

Each agreement is approved by the owner agency's own admins (issue #7, finding 5): the
demo build passes their usernames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from crossbeat.sharing.agreements import create_agreement
from crossbeat.sharing.groups import create_group
from crossbeat.sharing.model import Agreement
from crossbeat.store import Store

CITY, COUNTY, TRANSIT = "rivertonpd", "clackmerco", "metrotransit"
TASKFORCE = "auto-theft-taskforce"
_REFERENCE = "Riverton-Clackmer regional data sharing MoU 2026-01 (demo)"
_ALL_FIELDS = ["all"]
_POLICE_PURPOSES = ["analysis", "operations", "investigation"]


def demo_agreements(store: Store, approvers: Mapping[str, Sequence[str]]) -> list[Agreement]:
    """Create the demo region's group and agreements (the agencies must exist).

    Parameters
    ----------
    store
        The demo store, with rivertonpd, clackmerco and metrotransit registered.
    approvers
        For each demo agency, the usernames of its admins who approve its agreements.

    Returns
    -------
    list[Agreement]
        The agreements created, in creation order.
    """
    create_group(
        store,
        TASKFORCE,
        "Regional Auto Theft Task Force",
        members=[CITY, COUNTY],
        description="Joint city-county unit working vehicle crime across the region.",
    )
    made = []
    for owner, grantee in ((CITY, COUNTY), (COUNTY, CITY)):
        made.append(
            create_agreement(
                store,
                owner,
                grantee,
                offences=["all"],
                fields=_ALL_FIELDS,
                precision="exact",
                purposes=_POLICE_PURPOSES,
                include_sensitive=["sexual_offence", "domestic_violence", "juvenile",
                                   "victim_identifying"],
                approved_by=approvers[owner],
                reference=_REFERENCE,
                purpose_note="Neighbouring jurisdictions: joint analysis and patrol planning.",
            )
        )  # fmt: skip
    for grantee in (CITY, COUNTY):
        made.append(
            create_agreement(
                store,
                TRANSIT,
                grantee,
                offences=["all"],
                fields=_ALL_FIELDS,
                precision="block",
                delay="24h",
                purposes=["analysis", "operations"],
                approved_by=approvers[TRANSIT],
                reference=_REFERENCE,
                purpose_note="Transit incidents for the surrounding jurisdictions.",
            )
        )
    made.append(
        create_agreement(
            store,
            TRANSIT,
            f"group:{TASKFORCE}",
            offences=["240", "23F", "23G"],
            fields=_ALL_FIELDS,
            precision="exact",
            purposes=["investigation", "analysis"],
            approved_by=approvers[TRANSIT],
            reference=_REFERENCE,
            purpose_note="Vehicle crime at park-and-ride lots for the auto theft task force.",
        )
    )
    for owner in (CITY, COUNTY, TRANSIT):
        made.append(
            create_agreement(
                store,
                owner,
                "public",
                approved_by=approvers[owner],
                reference=_REFERENCE,
                purpose_note="Public crime map.",
            )
        )
    return made
