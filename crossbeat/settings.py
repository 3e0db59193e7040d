"""The settings registry: every setting's name, default and help text in one place.

Settings are read once, at the edge (the CLI or a server entry point), into a frozen
:class:`Settings` that is then passed in (``create_app(settings)``,
``open_store(settings.database_url)``). Nothing reads the environment at import time.
Each setting can come from an environment variable (``CROSSBEAT_<NAME>`` unless the
entry names another) and be overridden by keyword arguments, which win.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class SettingsError(ValueError):
    """A setting has an invalid value; the message names the setting and its source."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One entry of the settings registry."""

    name: str
    default: Any
    help: str
    #: Environment variable that sets it (default ``CROSSBEAT_<NAME>``).
    env: str | None = None

    @property
    def env_var(self) -> str:
        """Return the environment variable that sets this setting."""
        return self.env or f"CROSSBEAT_{self.name.upper()}"


#: Every setting CrossBeat reads. The documentation is generated from this list.
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "database_url",
        "sqlite:///crossbeat.db",
        "Database URL: sqlite:///path.db (embedded) or postgresql://user@host/db.",
        env="CROSSBEAT_DB",
    ),
    Setting("host", "127.0.0.1", "Interface the web server listens on."),
    Setting("port", 8000, "TCP port the web server listens on."),
    Setting("demo_dir", "demo-data", "Folder where `crossbeat demo` writes its files."),
    Setting("demo_seed", 7, "Random seed of the generated demo region."),
    Setting(
        "kek",
        "",
        "Key-encryption key of the personal data: base64 of 32 random bytes (make one with "
        "`crossbeat keys new-kek`). Without it (and without kek_file) a SQLite database "
        "gets a development key file <db>.kek; other databases cannot hold personal data.",
        env="CROSSBEAT_KEK",
    ),
    Setting(
        "kek_file",
        "",
        "File holding the key-encryption key (base64), instead of kek.",
        env="CROSSBEAT_KEK_FILE",
    ),
    Setting(
        "secure_cookies",
        True,
        "Mark the session cookie Secure (sent over HTTPS only). Turn off only for a "
        "development server reached over plain HTTP on a host other than localhost.",
    ),
    Setting(
        "audit_key_file",
        "",
        "Ed25519 private key (PEM, from `crossbeat audit keygen`) with which the web server "
        "signs audit tree heads (checkpoints). Empty: for a SQLite database, <db>.audit-key "
        "beside it (created on first start, mode 0600); any other database must set it.",
    ),
    Setting(
        "audit_heads_file",
        "",
        "File to which the web server (and `crossbeat audit checkpoint`) appends every "
        "signed audit tree head, outside the database, so that deleting heads and events "
        "together is detected by `crossbeat audit verify`. Keep it where the database "
        "administrators cannot write. Empty: for SQLite, <db>.audit-heads.jsonl beside it; "
        "any other database must set it.",
    ),
    Setting(
        "login_throttle",
        "10/15 minutes",
        "Failed sign-ins allowed per client address (a rate such as 10/15 minutes); "
        "beyond it the address gets 429 without its attempts counting against, or "
        "locking, any account.",
    ),
    Setting(
        "public_rate_limit",
        "600/minute",
        "Requests allowed per client address without a credential (the public), as a rate "
        "such as 600/minute; beyond it 429 with Retry-After.",
    ),
    Setting(
        "signin_rate_limit",
        "30/minute",
        "Sign-in requests (POST /auth/login, /auth/mfa) allowed per client address.",
    ),
    Setting(
        "rate_limit_storage",
        "memory://",
        "Where the rate limits are counted: memory:// for one worker; database:// in the "
        "database, shared by every worker and host (crossbeat serve --workers N uses it "
        "when memory:// is set); or a storage of the limits library (redis://host:6379).",
    ),
    Setting(
        "max_request_bytes",
        1048576,
        "Largest request body accepted, in bytes; a larger one gets 413.",
    ),
    Setting(
        "analysis_max_incidents",
        2000000,
        "Largest selection (incidents) an analysis of /api/v1/analysis accepts; a larger one "
        "gets 422 asking to narrow it. The Knox test and series search accept at most "
        "100,000 and 500,000 whatever this says (their cost grows with the square).",
    ),
    Setting(
        "analysis_time_budget",
        60,
        "Seconds an analysis of /api/v1/analysis may compute before it is stopped with 503 "
        "and Retry-After (0: no budget).",
    ),
    Setting(
        "analysis_concurrency",
        2,
        "Analyses computed at once per server process; a further one gets 503 with "
        "Retry-After at once instead of waiting for a worker.",
    ),
    Setting(
        "audit_checkpoint_interval",
        3600,
        "Seconds between the web server's audit checkpoints: at "
        "startup and then every interval it signs a new tree head if events were added "
        "since the newest head and that head is at least this old, or 1000 events are "
        "unsigned.",
    ),
    Setting(
        "basemap_tiles",
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "Raster tile URL template ({z}/{x}/{y}) of the web pages' base map; empty for none. "
        "Data layers draw on a plain background with boundaries when tiles cannot be fetched.",
    ),
    Setting(
        "basemap_attribution",
        "© OpenStreetMap contributors",
        "Attribution shown with the base map tiles (required by most tile providers).",
    ),
)


def _default(name: str) -> Any:
    return next(s.default for s in SETTINGS if s.name == name)


@dataclass(frozen=True, slots=True)
class Settings:
    """The validated settings of one CrossBeat process (see :data:`SETTINGS`)."""

    database_url: str = _default("database_url")
    host: str = _default("host")
    port: int = _default("port")
    demo_dir: str = _default("demo_dir")
    demo_seed: int = _default("demo_seed")
    kek: str = dataclasses.field(default=_default("kek"), repr=False)
    kek_file: str = _default("kek_file")
    secure_cookies: bool = _default("secure_cookies")
    audit_key_file: str = _default("audit_key_file")
    audit_heads_file: str = _default("audit_heads_file")
    login_throttle: str = _default("login_throttle")
    public_rate_limit: str = _default("public_rate_limit")
    signin_rate_limit: str = _default("signin_rate_limit")
    rate_limit_storage: str = _default("rate_limit_storage")
    max_request_bytes: int = _default("max_request_bytes")
    analysis_max_incidents: int = _default("analysis_max_incidents")
    analysis_time_budget: int = _default("analysis_time_budget")
    analysis_concurrency: int = _default("analysis_concurrency")
    audit_checkpoint_interval: int = _default("audit_checkpoint_interval")
    basemap_tiles: str = _default("basemap_tiles")
    basemap_attribution: str = _default("basemap_attribution")

    def __post_init__(self) -> None:
        from crossbeat.vault.errors import KeyConfigError
        from crossbeat.vault.kek import parse_kek

        if self.kek and self.kek_file:
            raise SettingsError("both kek and kek_file are set (CROSSBEAT_KEK, CROSSBEAT_KEK_FILE)")
        if self.kek:
            try:
                parse_kek(self.kek)
            except KeyConfigError as exc:
                raise SettingsError(str(exc)) from None
        if not 0 < self.port < 65536:
            raise SettingsError(f"port must be between 1 and 65535, not {self.port}")
        if self.audit_checkpoint_interval < 1:
            raise SettingsError(
                "audit_checkpoint_interval must be at least 1 second, not "
                f"{self.audit_checkpoint_interval}"
            )
        from limits import parse as parse_rate

        for name in ("login_throttle", "public_rate_limit", "signin_rate_limit"):
            try:
                parse_rate(getattr(self, name))
            except ValueError:
                raise SettingsError(
                    f"{name} {getattr(self, name)!r} is not a rate such as 10/15 minutes"
                ) from None
        if "://" not in self.rate_limit_storage:
            raise SettingsError(
                f"rate_limit_storage {self.rate_limit_storage!r} is not a storage URI such as "
                "memory:// or redis://host:6379"
            )
        if self.max_request_bytes < 1024:
            raise SettingsError(
                f"max_request_bytes must be at least 1024, not {self.max_request_bytes}"
            )
        for name, least in (
            ("analysis_max_incidents", 1),
            ("analysis_time_budget", 0),
            ("analysis_concurrency", 1),
        ):
            if getattr(self, name) < least:
                raise SettingsError(f"{name} must be at least {least}, not {getattr(self, name)}")
        if not self.database_url.strip():
            raise SettingsError("database_url is empty: give a URL such as sqlite:///crossbeat.db")


def _convert(setting: Setting, value: Any, source: str) -> Any:
    if isinstance(setting.default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{setting.name} from {source} must be true or false, not {value!r}")
    if isinstance(setting.default, int):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SettingsError(
                f"{setting.name} from {source} must be a whole number, not {value!r}"
            ) from None
    return str(value)


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read the settings from an environment mapping and keyword overrides.

    Parameters
    ----------
    env
        The environment to read ``CROSSBEAT_*`` variables from; ``None`` means
        ``os.environ`` (pass ``{}`` to ignore the environment).
    **overrides
        Setting values that win over the environment; ``None`` values are ignored so
        that unset CLI options fall through.

    Returns
    -------
    Settings
        The validated, frozen settings.

    Raises
    ------
    SettingsError
        For an unknown setting name or a value of the wrong type.

    Examples
    --------
    >>> load_settings({"CROSSBEAT_PORT": "9000"}, host="0.0.0.0").port
    9000
    """
    environ = os.environ if env is None else env
    known = {s.name: s for s in SETTINGS}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(unknown)} (known: {', '.join(known)})")
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if overrides.get(setting.name) is not None:
            values[setting.name] = _convert(setting, overrides[setting.name], "the arguments")
        elif setting.env_var in environ:
            values[setting.name] = _convert(setting, environ[setting.env_var], setting.env_var)
    return Settings(**values)


def settings_fields() -> tuple[str, ...]:
    """Return the field names of :class:`Settings` (they match :data:`SETTINGS`)."""
    return tuple(f.name for f in dataclasses.fields(Settings))


def settings_environment(settings: Settings) -> dict[str, str]:
    """Return the ``CROSSBEAT_*`` variables that :func:`load_settings` reads back as ``settings``.

    ``crossbeat serve --workers N`` passes its settings to the worker processes this way.

    Examples
    --------
    >>> load_settings(settings_environment(Settings(port=9001))).port
    9001
    """
    out: dict[str, str] = {}
    for setting in SETTINGS:
        value = getattr(settings, setting.name)
        out[setting.env_var] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    return out
