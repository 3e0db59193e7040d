"""``crossbeat profile draft``: a commented source profile for an export nobody described.

The entry point is :func:`draft_profile` (in :mod:`~crossbeat.ingest.draft.drafter`).
The guessers live in :mod:`~crossbeat.ingest.draft.columns`,
:mod:`~crossbeat.ingest.draft.dates`, :mod:`~crossbeat.ingest.draft.location` and
:mod:`~crossbeat.ingest.draft.offences`; :mod:`~crossbeat.ingest.draft.plan` lays out
the profile and :mod:`~crossbeat.ingest.draft.render` writes its TOML text.
"""

from crossbeat.ingest.draft.columns import DraftError
from crossbeat.ingest.draft.drafter import Draft, Finding, detect_layout, draft_profile, read_sample

__all__ = ["Draft", "DraftError", "Finding", "detect_layout", "draft_profile", "read_sample"]
