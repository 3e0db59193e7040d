"""Password policy and argon2id hashing.

The policy follows NIST SP 800-63B 5.1.1.2 as adopted by the CJIS Security Policy
(5.6.2.1.1 "password" attributes for Basic Password Standards): at least 8 characters,
long passphrases allowed (up to 256) and never truncated, no composition rules, checked
against a list of common and expected passwords and against the context (username,
agency). Passwords are Unicode-normalised (NFKC) before checking and hashing, so the
same passphrase typed on different keyboards matches.

Hashes are argon2id (RFC 9106) through argon2-cffi's :class:`~argon2.PasswordHasher`
with its defaults (the RFC 9106 low-memory profile: 64 MiB, 3 passes, 4 lanes, 16-byte
salt). argon2 hashes the whole input, unlike bcrypt, which silently ignores bytes after
the 72nd.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from crossbeat.auth.errors import WeakPassword

MIN_LENGTH = 8
MAX_LENGTH = 256

_HASHER = PasswordHasher()  # stateless; holds only the cost parameters
# A hash of a random string, verified when the username is unknown so that the
# reply takes as long as for a real account.
_DUMMY_HASH = _HASHER.hash("crossbeat-no-such-user-3b1f0c")
_AFFIX = re.compile(r"^[\d\W_]+|[\d\W_]+$")
_DELEET = str.maketrans({"@": "a", "4": "a", "0": "o", "3": "e", "1": "i", "!": "i", "$": "s",
                         "5": "s", "7": "t", "+": "t"})  # fmt: skip


@dataclass(frozen=True)
class PasswordPolicy:
    """Length limits of the password policy (the banned list and context checks always apply)."""

    min_length: int = MIN_LENGTH
    max_length: int = MAX_LENGTH


DEFAULT_POLICY = PasswordPolicy()


def normalise_password(password: str) -> str:
    """Return the NFKC form of a password, the form that is checked and hashed."""
    return unicodedata.normalize("NFKC", password)


@cache
def banned_passwords() -> frozenset[str]:
    """Return the shipped list of common and expected passwords (lower case)."""
    text = resources.files("crossbeat.auth").joinpath("data/banned_passwords.txt").read_text()
    return frozenset(
        line.strip().casefold() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def password_problems(
    password: str,
    *,
    context: Iterable[str] = (),
    policy: PasswordPolicy = DEFAULT_POLICY,
) -> list[str]:
    """Return every way a password breaks the policy (empty when it is acceptable).

    Parameters
    ----------
    password
        The candidate password, as typed.
    context
        Words the password must not contain: the username, agency id and name.
        Words shorter than 3 characters are ignored.
    policy
        Length limits.

    Returns
    -------
    list[str]
        One short sentence per broken rule.
    """
    if not isinstance(password, str):
        return ["the password must be text"]
    pw = normalise_password(password)
    problems = []
    if len(pw) < policy.min_length:
        problems.append(f"it is shorter than {policy.min_length} characters")
    if len(pw) > policy.max_length:
        problems.append(f"it is longer than {policy.max_length} characters")
    if pw and not pw.strip():
        problems.append("it is only spaces")
    folded = pw.casefold()
    if _is_banned(folded):
        problems.append("it is a commonly used password or a small variation of one")
    elif _is_repetitive_or_sequential(folded) or _is_padded_pattern(folded):
        problems.append("it is a repeated or sequential pattern")
    for word in dict.fromkeys(normalise_password(w).casefold().strip() for w in context):
        if len(word) >= 3 and word in folded:  # each word once, however often it is given
            problems.append(f"it contains {word!r}")
    return problems


def check_password(
    password: str,
    *,
    context: Iterable[str] = (),
    policy: PasswordPolicy = DEFAULT_POLICY,
) -> None:
    """Raise :class:`WeakPassword` with every reason if the password breaks the policy.

    Parameters
    ----------
    password
        The candidate password, as typed.
    context
        Words the password must not contain (username, agency id and name).
    policy
        Length limits.
    """
    problems = password_problems(password, context=context, policy=policy)
    if problems:
        raise WeakPassword(problems)


def hash_password(password: str) -> str:
    """Return the argon2id hash (PHC string) of the normalised password."""
    return _HASHER.hash(normalise_password(password))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Return whether ``password`` matches ``stored_hash`` (constant time).

    With ``stored_hash=None`` (unknown user) a dummy hash is verified, so that the
    answer takes as long as for a real account, and False is returned.
    """
    if not isinstance(password, str) or len(password) > 4 * MAX_LENGTH:
        password = ""  # still spend the time; over-long input is never a match
        stored_hash = None
    try:
        ok = _HASHER.verify(stored_hash or _DUMMY_HASH, normalise_password(password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    """Return whether a stored hash uses weaker parameters than the current ones."""
    return _HASHER.check_needs_rehash(stored_hash)


def _is_banned(folded: str) -> bool:
    banned = banned_passwords()
    stripped = _AFFIX.sub("", folded)
    forms = {folded, stripped, folded.translate(_DELEET), stripped.translate(_DELEET)}
    forms.add(_AFFIX.sub("", folded.translate(_DELEET)))
    return any(form in banned for form in forms if form)


def _is_padded_pattern(folded: str) -> bool:
    # "a1234567", "12345678x": a letter or two around a sequence or repetition.
    core = _AFFIX.sub("", folded)
    if len(core) > 2:
        return False
    rest = folded.replace(core, "", 1) if core else folded
    return _is_repetitive_or_sequential(rest)


def _is_repetitive_or_sequential(folded: str) -> bool:
    s = folded.replace(" ", "")
    if not s:
        return False
    for unit in range(1, 5):  # "aaaaaaaa", "abababab", "abcabcabc", "12341234"
        if len(s) >= 2 * unit and s == (s[:unit] * (len(s) // unit + 1))[: len(s)]:
            return True
    steps = {ord(b) - ord(a) for a, b in zip(s, s[1:], strict=False)}
    return steps in ({1}, {-1})  # "abcdefgh", "98765432"
