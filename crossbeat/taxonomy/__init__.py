"""Offence taxonomy as data: the NIBRS tables, per-scheme crosswalks, sensitivity flags.

Every agency reports offences in its own scheme (statute text, NCIC codes, police.uk
categories ...). A crosswalk file per scheme maps local codes to NIBRS offences; a
local code the crosswalk does not know is stored with its local code and flagged as
unmapped, never guessed. :func:`suggest` proposes matches for a person to accept, and
:func:`crossbeat.sharing.coverage.read_coverage` lists what is unmapped in the store
(an audited read). See ``docs/taxonomy.md``.
"""

from crossbeat.taxonomy.coverage import CoverageReport, SchemeCoverage, UnmappedCode, build_report
from crossbeat.taxonomy.crosswalk import (
    MATCH_LEVELS,
    NOT_A_CRIME,
    Crosswalk,
    CrosswalkRule,
    available_crosswalks,
    load_crosswalk,
    normalise_local,
    validate_crosswalk_file,
)
from crossbeat.taxonomy.nibrs import (
    NIBRS_VERSION,
    UCR_PART1_CLASSES,
    NibrsOffence,
    TaxonomyError,
    nibrs_location_types,
    nibrs_offences,
)
from crossbeat.taxonomy.sensitivity import (
    keyword_rules,
    keyword_sensitivity,
    narrative_sensitivity,
    rules_version,
)
from crossbeat.taxonomy.suggest import Suggestion, suggest

__all__ = [
    "MATCH_LEVELS",
    "NIBRS_VERSION",
    "NOT_A_CRIME",
    "UCR_PART1_CLASSES",
    "CoverageReport",
    "Crosswalk",
    "CrosswalkRule",
    "NibrsOffence",
    "SchemeCoverage",
    "Suggestion",
    "TaxonomyError",
    "UnmappedCode",
    "available_crosswalks",
    "build_report",
    "keyword_rules",
    "keyword_sensitivity",
    "load_crosswalk",
    "narrative_sensitivity",
    "nibrs_location_types",
    "nibrs_offences",
    "normalise_local",
    "rules_version",
    "suggest",
    "validate_crosswalk_file",
]
