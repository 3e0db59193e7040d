"""Write a drafted source profile as commented TOML.

The drafting code (:mod:`crossbeat.ingest.draft`) builds :class:`Section` objects:
keys with values, each with the comment that explains the guess behind it (or the TODO
a person must settle), and keys written commented out when the draft could not decide
them. :func:`render` turns them into TOML text in the order ``docs/profiles.md``
documents: top-level keys, ``[source]``, ``[id]``, dates, ``[location]``,
``[[offences]]``, ``[[persons]]``, ``[sensitivity]``.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, field

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
#: Comments shorter than this go at the end of their key's line.
_INLINE_COMMENT = 56
_WIDTH = 92


@dataclass
class Entry:
    """One ``key = value`` line, a commented-out key, or a comment alone.

    ``key`` None is a comment-only line. ``commented_out`` writes ``# key = value``:
    a setting the draft proposes but could not decide.
    """

    key: str | None
    value: object = None
    comment: str = ""
    commented_out: bool = False


@dataclass
class Section:
    """A TOML table (``header`` ``"source"``), array table (``"[offences]"``) or the top level.

    ``notes`` are comment lines written above the header.
    """

    header: str
    notes: list[str] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)

    def add(
        self, key: str | None, value: object = None, comment: str = "", *, off: bool = False
    ) -> None:
        """Append a key (``off``: commented out) or, with ``key`` None, a comment."""
        self.entries.append(Entry(key, value, comment, off))

    def note(self, text: str) -> None:
        """Append a comment line above the table header."""
        self.notes.append(text)


def toml_string(text: str) -> str:
    """Return ``text`` as a TOML basic string.

    Examples
    --------
    >>> toml_string("Crime type")
    '"Crime type"'
    """
    # JSON strings are TOML basic strings, except that TOML also forbids DEL raw.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_key(key: str) -> str:
    """Return a key bare when TOML allows it, else quoted."""
    return key if _BARE_KEY.match(key) else toml_string(key)


def toml_value(value: object) -> str:
    """Return a value (string, bool, number, list or inline table) as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def comment_lines(text: str, indent: str = "") -> list[str]:
    """Return ``text`` as wrapped ``#`` comment lines (never a line break inside one)."""
    clean = " ".join(text.split())
    if not clean:
        return []
    return [
        f"{indent}# {line}"
        for line in textwrap.wrap(clean, _WIDTH - len(indent) - 2, break_on_hyphens=False)
    ]


def _entry_lines(entry: Entry) -> list[str]:
    if entry.key is None:
        return comment_lines(entry.comment)
    line = f"{toml_key(entry.key)} = {toml_value(entry.value)}"
    prefix = "# " if entry.commented_out else ""
    comment = " ".join(entry.comment.split())
    if comment and len(comment) <= _INLINE_COMMENT and len(line) + len(comment) < _WIDTH:
        return [f"{prefix}{line}  # {comment}"]
    return [*comment_lines(comment), prefix + line]


def render(sections: list[Section], preamble: list[str]) -> str:
    """Return the TOML text of a drafted profile.

    Parameters
    ----------
    sections
        The top level (``header`` ``""``) first, then the tables in order.
    preamble
        Comment paragraphs at the top of the file.

    Returns
    -------
    str
        The profile text, ending with a newline.
    """
    lines: list[str] = []
    for paragraph in preamble:
        lines.extend(comment_lines(paragraph) or ["#"])
    for section in sections:
        if section.header and not section.entries and not section.notes:
            continue
        if lines:
            lines.append("")
        for note in section.notes:
            lines.extend(comment_lines(note))
        if section.header:  # "[offences]" becomes the array table "[[offences]]"
            lines.append(f"[{section.header}]")
        for entry in section.entries:
            lines.extend(_entry_lines(entry))
    return "\n".join(lines) + "\n"
