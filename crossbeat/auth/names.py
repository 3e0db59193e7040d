"""Readable names for the actors recorded in the audit log (users and API tokens by id)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from sqlalchemy import select

from crossbeat.auth.tables import api_tokens, users
from crossbeat.store import Store


def actor_names(store: Store, actors: Iterable[str]) -> dict[str, str]:
    """Return a readable name for each actor id that is a user or an API token.

    Audit events record users and tokens by their stable ids (a username can be reused
    after an account is gone; an id cannot). For display, a user id becomes its
    username and a token id ``token <label>`` (or ``token <id>`` without a label).
    Other actors (``system``, ``public``) and unknown ids are left out.

    Parameters
    ----------
    store
        The store holding the accounts.
    actors
        Actor ids as recorded in audit events.

    Returns
    -------
    dict[str, str]
        Actor id → name, for the ids that name a user or a token.
    """
    ids = sorted({a for a in actors if a})
    if not ids:
        return {}
    names: dict[str, str] = {}
    with store.connect() as conn:
        for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
            for uid, name in conn.execute(
                select(users.c.id, users.c.username).where(users.c.id.in_(chunk))
            ):
                names[uid] = name
            for tid, label in conn.execute(
                select(api_tokens.c.id, api_tokens.c.label).where(api_tokens.c.id.in_(chunk))
            ):
                names[tid] = f"token {label or tid}"
    return names


def user_id_for(store: Store, actor: str) -> str:
    """Return the user id of a username, or ``actor`` itself when no user has that name."""
    name = unicodedata.normalize("NFKC", actor).strip().lower()
    with store.connect() as conn:
        found = conn.execute(select(users.c.id).where(users.c.username == name)).scalar()
    return str(found) if found else actor
