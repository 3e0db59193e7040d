"""CSRF protection for browser forms: a synchronizer token derived from the session.

The form token is ``HMAC-SHA256(session token, "crossbeat-csrf-v1")``. Only the
holder of the session cookie can compute it, it changes with every session (so a
token from an old or another user's session is refused), and the server needs to
store nothing: it recomputes the token from the session cookie of the request and
compares in constant time. A cross-site attacker can make the browser send the
cookie but cannot read it or the page, so cannot supply the matching form field.
The web layer puts :func:`csrf_token` in every form and calls :func:`check_csrf` on
every state-changing request (with ``SameSite=Lax`` cookies as a second line).
"""

from __future__ import annotations

import hashlib
import hmac

from crossbeat.auth.errors import CsrfError

_CONTEXT = b"crossbeat-csrf-v1"


def csrf_token(session_token: str) -> str:
    """Return the CSRF token for forms rendered in the session ``session_token``."""
    if not isinstance(session_token, str) or not session_token:
        raise CsrfError()
    return hmac.new(session_token.encode("utf-8"), _CONTEXT, hashlib.sha256).hexdigest()


def check_csrf(session_token: str, presented: str | None) -> None:
    """Raise :class:`CsrfError` unless ``presented`` is the CSRF token of this session.

    Parameters
    ----------
    session_token
        The session token from the request's cookie (already validated).
    presented
        The token from the submitted form field or ``X-CSRF-Token`` header.
    """
    if not isinstance(presented, str) or not presented:
        raise CsrfError()
    expected = csrf_token(session_token)
    if not hmac.compare_digest(expected.encode("ascii"), presented.encode("utf-8", "replace")):
        raise CsrfError()
