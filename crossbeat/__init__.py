"""CrossBeat: open-source collaborative crime mapping.

The curated public API: the common incident model and the store factory.
"""

from crossbeat.model import Incident, Offence, incident_id
from crossbeat.store import open_store

__version__ = "0.1.0"

__all__ = ["Incident", "Offence", "__version__", "incident_id", "open_store"]
