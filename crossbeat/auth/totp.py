"""Time-based one-time codes (RFC 6238) for the second factor, with replay protection.

Codes are 6 digits over 30-second steps (SHA-1, the parameters every authenticator
app supports). A code is accepted for the current step or one step either side (to
allow for clock drift and typing time), and only if its step is newer than the last
accepted one for that user: the step is recorded in ``users.totp_last_step`` by a
single conditional UPDATE, so each code works once even across processes.
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp
from sqlalchemy import Connection, or_, update

from crossbeat.auth.errors import InvalidCredentials, TotpReplay
from crossbeat.auth.tables import users

DIGITS = 6
STEP_SECONDS = 30
DRIFT_STEPS = 1
ISSUER = "CrossBeat"


def new_secret() -> str:
    """Return a new random base32 TOTP seed (160 bits)."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str, *, issuer: str = ISSUER) -> str:
    """Return the ``otpauth://`` URI an authenticator app reads (usually from a QR code).

    Parameters
    ----------
    secret
        The base32 seed.
    username
        Shown in the app as the account name.
    issuer
        Shown in the app as the service name.
    """
    return _totp(secret).provisioning_uri(name=username, issuer_name=issuer)


def time_step(when: datetime) -> int:
    """Return the 30-second step number of an aware datetime."""
    return int(when.timestamp()) // STEP_SECONDS


def code_at(secret: str, when: datetime) -> str:
    """Return the code an authenticator app shows at ``when`` (for tests and set-up checks)."""
    return _totp(secret).generate_otp(time_step(when))


def matching_step(secret: str, code: str, when: datetime) -> int | None:
    """Return the step within the drift window whose code equals ``code``, else None.

    Every candidate is compared in constant time; malformed codes match nothing.
    """
    code = (code or "").strip().replace(" ", "") if isinstance(code, str) else ""
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    now = time_step(when)
    found = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if hmac.compare_digest(_totp(secret).generate_otp(step), code):
            found = step
    return found


def accept_code(conn: Connection, user_id: str, secret: str, code: str, when: datetime) -> int:
    """Check a code and record its step so that it cannot be used again.

    Parameters
    ----------
    conn
        An open transaction; the step is recorded in it.
    user_id
        The user whose seed ``secret`` is.
    secret
        The user's base32 seed.
    code
        The code as typed.
    when
        The current time.

    Returns
    -------
    int
        The accepted step.

    Raises
    ------
    InvalidCredentials
        The code is wrong or malformed.
    TotpReplay
        The code is right, but it or a newer one was already accepted.
    """
    step = matching_step(secret, code, when)
    if step is None:
        raise InvalidCredentials()
    result = conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .where(or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < step))
        .values(totp_last_step=step)
    )
    if result.rowcount != 1:
        raise TotpReplay()
    return step


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
