"""Per-address throttling of failed sign-ins (issue #7, finding 8).

The account lockout (5 failures in 15 minutes lock an account, CJIS AC-7) protects each
account from guessing, but lets anyone lock any account whose name they know. So failed
sign-ins are also counted per client address, with the ``limits`` library (moving
window, in the server's memory): once an address reaches ``login_throttle`` failures
(default 10 per 15 minutes), its further sign-in attempts answer 429 with
``Retry-After`` *without* checking the password, so they neither count against the
account nor lock it. One address can then lock at most two accounts per window.

Known limits: with ``rate_limit_storage = memory://`` the counts live in each server
process (several processes each count on their own; a restart forgets them); with
``database://`` (what ``crossbeat serve --workers N`` uses) they are kept in the
database in fixed windows and shared by every worker; behind a reverse proxy the client address must
be passed on (uvicorn ``--forwarded-allow-ips``), or every client shares the proxy's
address; an attacker with many addresses can still lock many accounts, each of which
an administrator then unlocks (``crossbeat user unlock``).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse, storage, strategies
from limits.storage import Storage

#: The default rule: failed sign-ins allowed per client address.
DEFAULT_RULE = "10/15 minutes"
_NAMESPACE = "sign-in-failures"


class LoginThrottle:
    """Counts failed sign-ins per client address and says when an address must wait.

    Parameters
    ----------
    rule
        A ``limits`` rate such as ``10/15 minutes``.
    shared
        A storage shared by the server's workers (fixed windows); None counts in this
        process's memory (moving window).
    """

    def __init__(self, rule: str = DEFAULT_RULE, shared: Storage | None = None) -> None:
        self.item: RateLimitItem = parse(rule)
        self.limiter: strategies.RateLimiter
        if shared is not None:
            self.limiter = strategies.FixedWindowRateLimiter(shared)
        else:
            self.limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    @staticmethod
    def _key(address: str | None) -> str:
        return address or "unknown-address"

    def allows(self, address: str | None) -> bool:
        """Return whether this address may try to sign in now."""
        return self.limiter.test(self.item, _NAMESPACE, self._key(address))

    def failed(self, address: str | None) -> None:
        """Count one failed sign-in of this address."""
        self.limiter.hit(self.item, _NAMESPACE, self._key(address))

    def retry_after(self, address: str | None) -> int:
        """Return the seconds until this address may try again (at least 1)."""
        stats = self.limiter.get_window_stats(self.item, _NAMESPACE, self._key(address))
        return max(1, math.ceil(stats.reset_time - time.time()))
