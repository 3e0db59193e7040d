"""The typed failures of authentication and account management.

Two families: :class:`AuthenticationError` for signing in and using a session or
token (its messages are safe to show to whoever is signing in, and never say which
of username, password or code was wrong), and :class:`AccountError` for bad input to
a management operation (its messages name the problem and the next step; the
operation changed nothing).
"""

from __future__ import annotations

from collections.abc import Sequence


class AuthError(Exception):
    """Base class of every error raised by :mod:`crossbeat.auth`."""


# -- signing in, sessions, tokens --------------------------------------------------------
class AuthenticationError(AuthError):
    """Signing in, or using a session or API token, failed."""


class InvalidCredentials(AuthenticationError):
    """The username, password or one-time code is wrong (deliberately not saying which)."""

    def __init__(self, message: str = "invalid username, password or one-time code") -> None:
        super().__init__(message)


class TotpReplay(InvalidCredentials):
    """The one-time code was right but has already been used (or a newer one has)."""

    def __init__(self) -> None:
        super().__init__("this one-time code has already been used: wait for the next code")


class MfaRequired(AuthenticationError):
    """The password step passed; a one-time code from the authenticator app is still needed.

    Attributes
    ----------
    challenge
        The :class:`~crossbeat.auth.login.MfaChallenge` to complete with the code.
    """

    def __init__(self, challenge: object = None) -> None:
        self.challenge = challenge
        super().__init__("a one-time code from your authenticator app is required")


class MfaChallengeExpired(AuthenticationError):
    """The sign-in started with the password is unknown, used or too old."""

    def __init__(self) -> None:
        super().__init__("this sign-in has expired: start again with your username and password")


class AccountLocked(AuthenticationError):
    """Too many failed attempts: the account is locked until an administrator unlocks it."""

    def __init__(self) -> None:
        super().__init__(
            "account locked after too many failed sign-in attempts: "
            "ask your agency administrator to unlock it"
        )


class AccountDisabled(AuthenticationError):
    """The account is disabled (by an administrator, or after 90 days unused)."""

    def __init__(self) -> None:
        super().__init__("account disabled: ask your agency administrator to enable it")


class SessionExpired(AuthenticationError):
    """The session is unknown, logged out, idle too long or past its maximum age.

    Attributes
    ----------
    reason
        ``unknown``, ``logout``, ``idle``, ``absolute``, ``disabled``, ``password`` or
        ``totp_reset``.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        detail = {
            "unknown": "not signed in",
            "logout": "you have signed out",
            "idle": "session ended after 30 minutes without activity",
            "absolute": "session ended after 12 hours",
            "disabled": "the account has been disabled",
            "password": "the password has been changed",
            "totp_reset": "the second factor has been reset",
        }.get(reason, reason)
        super().__init__(f"{detail}: sign in again")


class TokenInvalid(AuthenticationError):
    """The API token is unknown or revoked."""

    def __init__(self) -> None:
        super().__init__("invalid or revoked API token: ask an agency administrator for a new one")


class TokenScopeError(AuthenticationError):
    """The API token is valid but not for this agency or purpose."""


class CsrfError(AuthenticationError):
    """A browser form arrived without the CSRF token of the current session."""

    def __init__(self) -> None:
        super().__init__("the form has expired or did not come from this site: reload the page")


class PermissionDenied(AuthError):
    """The signed-in user's roles do not allow this operation; the message says why."""


# -- bad input to management operations --------------------------------------------------
class AccountError(AuthError, ValueError):
    """A management operation was given bad input; nothing was changed."""


class UnknownAgency(AccountError):
    """No agency with this id is registered."""

    def __init__(self, agency_id: str) -> None:
        super().__init__(
            f"unknown agency {agency_id!r}: register it first (crossbeat agency add) "
            "or check the id with crossbeat agency list"
        )


class UnknownUser(AccountError):
    """No user with this username exists."""

    def __init__(self, username: str) -> None:
        super().__init__(f"unknown user {username!r}: check the name with crossbeat user list")


class DuplicateUsername(AccountError):
    """A user with this username already exists (usernames are unique across agencies)."""

    def __init__(self, username: str) -> None:
        super().__init__(
            f"username {username!r} is taken (usernames are unique across all agencies): "
            "choose another"
        )


class MalformedSignIn(AccountError):
    """A sign-in whose username or password is not text or holds a NUL character."""


class InvalidUsername(AccountError):
    """The username is empty, too long or uses characters that are not allowed."""


class UnknownRole(AccountError):
    """A role name is not one of the defined roles."""


class UnknownToken(AccountError):
    """No API token with this id exists."""

    def __init__(self, token_id: str) -> None:
        super().__init__(f"unknown API token {token_id!r}: check the id with crossbeat token list")


class InvalidPurpose(AccountError):
    """An API token purpose is not one of the defined purposes."""


class WeakPassword(AccountError):
    """The password breaks the password policy.

    Attributes
    ----------
    reasons
        Every rule the password breaks, each a short sentence.
    """

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        super().__init__("password refused: " + "; ".join(self.reasons) + ". Choose another.")
