"""Demo accounts: a user for every agency role in every demo agency, one platform admin.

No demo agency has a cross-agency superuser of its own: the one ``platform_admin``
(:data:`PLATFORM_ADMIN`) belongs to the hosting agency, Riverton PD. Every agency has
two agency admins (``PREFIX.agency-admin`` and ``PREFIX.agency-admin-2``), the two
distinct approvers an agreement sharing personal data needs (issue #7, finding 5).

FOR THE DEMO ONLY. The accounts share one published password and their TOTP secrets
are written, with the sign-in details, to ``demo-accounts.json`` in the demo folder
(mode 0600) so that ``crossbeat demo code USER`` can print the current second-factor
code. A real deployment creates its users with ``crossbeat user add``, which shows a
secret once and keeps only what the server needs.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from crossbeat.audit import auth_sink
from crossbeat.auth.accounts import create_user, list_users
from crossbeat.auth.errors import DuplicateUsername
from crossbeat.auth.roles import Role
from crossbeat.auth.totp import code_at
from crossbeat.store import Store

#: The demo accounts' password (published in the README: demo only).
DEMO_PASSWORD = "crossbeat-demo-2026"
#: File, in the demo folder, holding the demo accounts' sign-in details.
ACCOUNTS_FILE = "demo-accounts.json"

#: Username prefix of each demo agency's accounts.
PREFIXES = {"rivertonpd": "riverton", "clackmerco": "clackmer", "metrotransit": "metro"}
#: The demo's one platform administrator (of the hosting agency).
PLATFORM_ADMIN = ("rivertonpd", "riverton.platform-admin")


def demo_usernames() -> list[tuple[str, str, Role]]:
    """Return (agency, username, role) of every demo account, by agency and role."""
    out: list[tuple[str, str, Role]] = []
    for agency_id, prefix in PREFIXES.items():
        for role in Role:
            if role is Role.PLATFORM_ADMIN:
                if agency_id == PLATFORM_ADMIN[0]:
                    out.append((agency_id, PLATFORM_ADMIN[1], role))
                continue
            out.append((agency_id, f"{prefix}.{role.value.replace('_', '-')}", role))
            if role is Role.AGENCY_ADMIN:
                out.append((agency_id, f"{prefix}.agency-admin-2", role))
    return out


def demo_admins(agency_id: str) -> tuple[str, str]:
    """Return the usernames of the two agency admins of a demo agency."""
    prefix = PREFIXES[agency_id]
    return f"{prefix}.agency-admin", f"{prefix}.agency-admin-2"


@dataclass(frozen=True, slots=True)
class DemoAccount:
    """Sign-in details of one demo account."""

    username: str
    agency_id: str
    role: str
    password: str
    totp_secret: str
    otpauth_uri: str


def demo_accounts(store: Store, out_dir: Path) -> list[DemoAccount]:
    """Create the demo accounts (:func:`demo_usernames`) and save their sign-in details.

    Idempotent: accounts that exist are kept (their details are read from the file);
    accounts in the file but not in the database (a rebuilt database) are created anew.

    Returns
    -------
    list[DemoAccount]
        Every demo account, by agency and role.
    """
    path = out_dir / ACCOUNTS_FILE
    known = {a.username: a for a in load_demo_accounts(out_dir)}
    accounts: list[DemoAccount] = []
    stored = {u.username for u in list_users(store)}
    for agency_id, username, role in demo_usernames():
        if username in known and username in stored:
            accounts.append(known[username])
            continue
        try:
            enrolment = create_user(
                store,
                agency_id,
                username,
                DEMO_PASSWORD,
                [role],
                display_name=f"Demo {role.value.replace('_', ' ')} ({agency_id})",
                events=auth_sink(store),
            )
        except DuplicateUsername:
            continue  # created earlier without a details file; nothing to show
        accounts.append(
            DemoAccount(
                username=enrolment.user.username,
                agency_id=agency_id,
                role=role.value,
                password=DEMO_PASSWORD,
                totp_secret=enrolment.totp_secret,
                otpauth_uri=enrolment.provisioning_uri,
            )
        )
    path.write_text(json.dumps([asdict(a) for a in accounts], indent=2), encoding="utf-8")
    os.chmod(path, 0o600)
    return accounts


def load_demo_accounts(out_dir: Path) -> list[DemoAccount]:
    """Return the saved demo accounts (empty when the demo has none yet)."""
    path = out_dir / ACCOUNTS_FILE
    if not path.is_file():
        return []
    return [DemoAccount(**a) for a in json.loads(path.read_text(encoding="utf-8"))]


def demo_code(out_dir: Path, username: str, when: datetime) -> str:
    """Return the current TOTP code of a demo account.

    Raises
    ------
    KeyError
        When no demo account has that username.
    """
    for account in load_demo_accounts(out_dir):
        if account.username == username.strip().lower():
            return code_at(account.totp_secret, when)
    raise KeyError(username)
