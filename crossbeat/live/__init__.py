"""The service's live side (issue #10): field reports, the stream's fan-out, bulletins, jobs.

* :mod:`crossbeat.live.field` — incidents reported and updated from phones, through the
  ingest's normaliser, with idempotency keys and optimistic concurrency;
* :mod:`crossbeat.live.broker` — one per process: wakes the live streams when an event is
  committed (PostgreSQL ``LISTEN``/``NOTIFY``; SQLite in process);
* :mod:`crossbeat.live.bulletins` — interagency bulletins and their acknowledgements;
* :mod:`crossbeat.live.jobs` — uploads ingested in the background, resumed after a restart.

The per-subscriber filtering of the stream is the sharing module's
(:mod:`crossbeat.sharing.live`).
"""

from crossbeat.live import tables as tables  # registers the tables on the store metadata
