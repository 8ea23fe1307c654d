"""Governor settings: one frozen value, built from arguments or from the seed's environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from claw_governance.errors import ConfigError
from claw_governance.policy.conditions import ArgumentLimits

DURABILITY_MODES = ("os", "fsync")
STATE_URL_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True, slots=True)
class GovernorConfig:
    """Every setting of a Governor. Paths may be None: no policy (deny all), in-memory audit/state."""

    policy_path: Path | None = None
    audit_path: Path | None = None
    identity_path: Path | None = None
    state_path: Path | None = None
    policy_reload_interval: float | None = None  # seconds
    audit_retention_days: int = 2555
    audit_rotation_size_mb: float = 100.0
    audit_checkpoint_interval: int = 1000  # entries between signed checkpoints
    durability: str = "os"  # "os": reaches the OS before the tool runs; "fsync": group commit
    require_signature: bool = False
    signature_max_age_seconds: float = 300.0
    min_trust_score: int = 50
    auto_create_identity: bool = True
    identity_passphrase: str | None = field(default=None, repr=False)  # never in a repr or a log
    escalation_timeout_hours: float = 24.0
    escalation_webhook_url: str | None = None
    escalation_console: bool = False
    load_entry_points: bool = True
    enable_adapters: bool = False
    # issue 4: state sync, key encryption, webhook notifier
    state_sync_interval: float = 1.0  # seconds: bound on how late another process's revocation is seen
    # issue 14: witnesses that cosign audit checkpoints ("<url> <vkey>" or "<vkey>@<url>", comma-separated)
    audit_witnesses: str | None = None
    identity_scrypt_log2_n: int = 17  # scrypt cost N = 2**this for passphrase-encrypted keys (min 14)
    escalation_webhook_timeout: float = 5.0  # seconds per POST attempt
    escalation_webhook_retries: int = 3  # attempts after the first one
    # issue 13: what of a call's arguments a rule condition may see (over a bound: the condition is unknown)
    condition_max_depth: int = 32
    condition_max_items: int = 10_000
    condition_max_string_chars: int = 1_048_576
    # issue 13: what is stored of one string (tool output, error text, an argument) at most, in characters;
    # a longer value is cut, with its full size and SHA-256 recorded (docs/audit.md, "Redaction")
    max_stored_output: int = 65536
    # issue 20: count `rate_limits` (and `escalations_per_hour`) in the state store, shared by every process and
    # host, instead of in each process's memory (exact fleet-wide; one state-store transaction per limited call)
    fleet_rate_limits: bool = False
    # issue 16: signed notifications that link to the reviewer console
    escalation_webhook_secret: str | None = field(default=None, repr=False)  # Standard Webhooks "whsec_<base64>"
    escalation_webhook_format: str = "json"  # "json" (our document) | "slack" (blocks with an Open button)
    console_url: str | None = None  # the reviewer console's public URL: notifications link to it
    # issue 17: fleet mode
    state_url: str | None = field(default=None, repr=False)  # postgresql://...: the fleet's shared state
    audit_sink: str | None = field(default=None, repr=False)  # postgresql://...: the fleet-wide audit copy
    audit_sink_interval: float = 1.0  # seconds between copies of the local trail to the audit sink

    def __post_init__(self) -> None:
        if self.durability not in DURABILITY_MODES:
            raise ConfigError(f"durability must be one of {', '.join(DURABILITY_MODES)}, not {self.durability!r}")
        if self.audit_retention_days < 1:
            raise ConfigError(f"audit_retention_days must be at least 1, not {self.audit_retention_days}")
        if self.audit_rotation_size_mb <= 0:
            raise ConfigError(f"audit_rotation_size_mb must be positive, not {self.audit_rotation_size_mb}")
        if self.escalation_timeout_hours <= 0:
            raise ConfigError(f"escalation_timeout_hours must be positive, not {self.escalation_timeout_hours}")
        if self.policy_reload_interval is not None and self.policy_reload_interval <= 0:
            raise ConfigError(f"policy_reload_interval must be positive, not {self.policy_reload_interval}")
        if not 0 < self.state_sync_interval <= 60:
            raise ConfigError(f"state_sync_interval must be in (0, 60] seconds, not {self.state_sync_interval}")
        if not 14 <= self.identity_scrypt_log2_n <= 22:
            raise ConfigError(f"identity_scrypt_log2_n must be 14..22, not {self.identity_scrypt_log2_n}")
        if self.escalation_webhook_timeout <= 0 or self.escalation_webhook_retries < 0:
            raise ConfigError("escalation_webhook_timeout must be positive and escalation_webhook_retries >= 0")
        for name in ("condition_max_depth", "condition_max_items", "condition_max_string_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive whole number, not {value!r}")
        if not 1024 <= self.max_stored_output <= 64 * 1024 * 1024:
            raise ConfigError(f"max_stored_output must be 1024..67108864 characters, not {self.max_stored_output}")
        if self.escalation_webhook_format not in ("json", "slack"):
            raise ConfigError(
                f"escalation_webhook_format must be json or slack, not {self.escalation_webhook_format!r}"
            )
        if self.console_url is not None and not self.console_url.startswith(("http://", "https://")):
            raise ConfigError(f"console_url must be an http(s) URL, not {self.console_url!r}")
        if self.state_url is not None and not self.state_url.startswith(STATE_URL_SCHEMES):
            raise ConfigError(
                f"state_url must start with {' or '.join(STATE_URL_SCHEMES)}, not {self.state_url.split(':', 1)[0]!r}"
            )
        if self.audit_sink is not None and not self.audit_sink.startswith(STATE_URL_SCHEMES):
            raise ConfigError(
                f"audit_sink must start with {' or '.join(STATE_URL_SCHEMES)}, not {self.audit_sink.split(':', 1)[0]!r}"
            )
        if not 0 < self.audit_sink_interval <= 3600:
            raise ConfigError(f"audit_sink_interval must be in (0, 3600] seconds, not {self.audit_sink_interval}")
        if self.escalation_webhook_url is not None and not self.escalation_webhook_url.startswith(
            ("http://", "https://")
        ):
            raise ConfigError(f"escalation_webhook_url must be an http(s) URL, not {self.escalation_webhook_url!r}")

    @property
    def argument_limits(self) -> ArgumentLimits:
        """The ``condition_max_*`` settings as the policy engine takes them."""
        return ArgumentLimits(self.condition_max_depth, self.condition_max_items, self.condition_max_string_chars)

    @property
    def resolved_state_path(self) -> Path | None:
        """Where the state store lives: ``state_path``, else ``<identity_path>/.state``, else in memory."""
        if self.state_path is not None:
            return self.state_path
        if self.identity_path is not None:
            return self.identity_path / ".state"
        return None

    def with_changes(self, **changes: Any) -> GovernorConfig:
        """A copy with some settings changed."""
        return replace(self, **changes)


def _bool(name: str, value: str) -> bool:
    low = value.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _number(name: str, value: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {value!r}") from None


# (environment variable, field, converter). POLICY_RELOAD_INTERVAL is in milliseconds, as in the seed.
_ENV: tuple[tuple[str, str, Any], ...] = (
    ("POLICY_PATH", "policy_path", Path),
    ("AUDIT_PATH", "audit_path", Path),
    ("IDENTITY_PATH", "identity_path", Path),
    ("STATE_PATH", "state_path", Path),
    ("POLICY_RELOAD_INTERVAL", "policy_reload_interval", lambda n, v: _number(n, v, float) / 1000.0),
    ("AUDIT_RETENTION_DAYS", "audit_retention_days", lambda n, v: _number(n, v, int)),
    ("AUDIT_ROTATION_SIZE_MB", "audit_rotation_size_mb", lambda n, v: _number(n, v, float)),
    ("AUDIT_CHECKPOINT_INTERVAL", "audit_checkpoint_interval", lambda n, v: _number(n, v, int)),
    ("AUDIT_DURABILITY", "durability", None),
    ("IDENTITY_REQUIRE_SIGNATURE", "require_signature", _bool),
    ("IDENTITY_MIN_TRUST_SCORE", "min_trust_score", lambda n, v: _number(n, v, int)),
    ("IDENTITY_AUTO_CREATE", "auto_create_identity", _bool),
    ("CLAW_IDENTITY_PASSPHRASE", "identity_passphrase", None),
    ("ESCALATION_TIMEOUT_HOURS", "escalation_timeout_hours", lambda n, v: _number(n, v, float)),
    ("ESCALATION_WEBHOOK_URL", "escalation_webhook_url", None),
    ("STATE_SYNC_INTERVAL", "state_sync_interval", lambda n, v: _number(n, v, float)),
    ("AUDIT_WITNESSES", "audit_witnesses", None),
    ("IDENTITY_SCRYPT_LOG2_N", "identity_scrypt_log2_n", lambda n, v: _number(n, v, int)),
    ("ESCALATION_WEBHOOK_TIMEOUT", "escalation_webhook_timeout", lambda n, v: _number(n, v, float)),
    ("ESCALATION_WEBHOOK_RETRIES", "escalation_webhook_retries", lambda n, v: _number(n, v, int)),
    ("CONDITION_MAX_DEPTH", "condition_max_depth", lambda n, v: _number(n, v, int)),
    ("CONDITION_MAX_ITEMS", "condition_max_items", lambda n, v: _number(n, v, int)),
    ("CONDITION_MAX_STRING_CHARS", "condition_max_string_chars", lambda n, v: _number(n, v, int)),
    ("AUDIT_MAX_STORED_OUTPUT", "max_stored_output", lambda n, v: _number(n, v, int)),
    ("RATE_LIMITS_FLEET", "fleet_rate_limits", _bool),
    ("ESCALATION_WEBHOOK_SECRET", "escalation_webhook_secret", None),
    ("ESCALATION_WEBHOOK_FORMAT", "escalation_webhook_format", None),
    ("CONSOLE_URL", "console_url", None),
    ("STATE_URL", "state_url", None),
    ("AUDIT_SINK", "audit_sink", None),
    ("AUDIT_SINK_INTERVAL", "audit_sink_interval", lambda n, v: _number(n, v, float)),
    ("CLAW_CONSOLE_URL", "console_url", None),
)

SEED_DEFAULTS = {"policy_path": Path("policies"), "audit_path": Path("logs/audit"), "identity_path": Path("identities")}


def config_from_env(env: Mapping[str, str] | None = None, **overrides: Any) -> GovernorConfig:
    """Settings from environment variables (the seed's names), with the seed's default paths."""
    env = os.environ if env is None else env
    values: dict[str, Any] = dict(SEED_DEFAULTS)
    for var, field_name, convert in _ENV:
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        if convert is None:
            values[field_name] = raw
        elif convert is Path:
            values[field_name] = Path(raw)
        else:
            values[field_name] = convert(var, raw)
    handler = env.get("ESCALATION_HANDLER", "")
    values["escalation_console"] = handler.strip().lower() in ("console", "human-review")
    known = {f.name for f in fields(GovernorConfig)}
    for key in overrides:
        if key not in known:
            raise ConfigError(f"unknown setting {key!r}")
    values.update(overrides)
    return GovernorConfig(**values)
