"""Runtime settings, read from ``CHURNSCALE_*`` environment variables.

Built once by the CLI or the app factory and passed down; never created at import time.
:func:`load_settings` is the one way commands build them: an invalid value becomes one
:class:`~churnscale.exceptions.ConfigError` line naming the variable, and the secrets the
settings hold are remembered for redaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from churnscale.exceptions import ConfigError
from churnscale.redaction import remember, remember_uri


class Settings(BaseSettings):
    """Every runtime setting of churnscale, with safe defaults for a laptop."""

    model_config = SettingsConfigDict(env_prefix="CHURNSCALE_", extra="ignore")

    home: Path = Field(
        default=Path(".churnscale"),
        description="Working directory for the registry, caches and studies.",
    )
    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI; defaults to a SQLite file under home.",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="Endpoint of an S3-compatible store (MinIO, moto)."
    )
    batch_rows: int = Field(default=262_144, ge=1_024, description="Rows per streamed batch.")
    max_bad_fraction: float = Field(default=0.01, ge=0.0, le=1.0)
    api_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated keys for the predict endpoints; none means predict is open.",
    )
    admin_api_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated keys for the admin endpoints; none means admin is disabled.",
    )
    feedback_api_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated keys for POST /v1/feedback (admin keys also work); a "
        "predict key cannot post labels. None: feedback is open when no key of any role is "
        "set, else needs an admin key.",
    )

    # ---- prediction service and batch scoring ----
    model: str | None = Field(
        default=None,
        description="Model the service loads: a bundle directory (or, with the registry, a "
        "reference such as churn@champion).",
    )
    model_name: str = Field(
        default="churn",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Name the model answers to in the Open Inference Protocol (/v2/models/…).",
    )
    max_batch_rows: int = Field(
        default=10_000, ge=1, le=1_000_000, description="Most rows one batch request may hold."
    )
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1_024,
        le=1024**3,
        description="Largest request body accepted (413 above it), enforced while reading.",
    )
    max_decoded_bytes: int = Field(
        default=256 * 1024**2,
        ge=1024**2,
        le=64 * 1024**3,
        description="Largest size a request body may decode to (Arrow decompressed, dictionary "
        "columns expanded, JSON as Python objects, CSV as columns), sized from the body before "
        "decoding; 413 above it.",
    )
    reasons: bool = Field(
        default=False, description="Return the top-3 reason codes with every prediction."
    )
    predictor: Literal["auto", "compiled", "lightgbm"] = Field(
        default="auto",
        description="Tree evaluator: compiled (lleaves), LightGBM's own, or auto (compiled "
        "when lleaves is installed).",
    )
    fast_path: bool = Field(
        default=True,
        description="Answer POST /v1/predict inside the HTTP protocol when it needs no wait "
        "(no ASGI round trip); off: every request goes through ASGI.",
    )
    value_field: str = Field(
        default="value",
        max_length=256,
        description="Optional request field (or CSV/Arrow batch column) holding the customer's "
        "value, a number >= 0: the answer then has value and expected_loss = P(churn) x value. "
        "A numeric feature of the model may be named; empty: off.",
    )

    # ---- uplift models: the policy their actions follow ----
    uplift_action_cost: float = Field(
        default=0.0, ge=0.0, description="Cost of one action (an offer) for an uplift model."
    )
    uplift_outcome_value: float = Field(
        default=1.0,
        description="Worth of one more positive outcome (negative when the outcome is bad, "
        "e.g. churn); treat when uplift × value > cost.",
    )
    uplift_budget: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Share of customers an uplift policy may treat."
    )
    uplift_threshold: float | None = Field(
        default=None, description="Minimum uplift an uplift policy treats."
    )
    experiment_log: Path | None = Field(
        default=None,
        description="Run an experiment: assign action arms (sticky by id) and log assignments "
        "and /v1/feedback outcomes to this JSON Lines file.",
    )
    experiment_arms: str = Field(
        default="treat=0.5,control=0.5", description="Action arms and their weights."
    )
    experiment_name: str = Field(default="offer", description="Experiment name (hash key).")
    experiment_exploration: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Share of customers kept randomized when an uplift policy decides.",
    )

    # ---- monitoring, feedback and retraining ----
    drift_psi_threshold: float = Field(
        default=0.2, gt=0.0, description="A feature drifts when its PSI reaches this value."
    )
    drift_p_value: float = Field(
        default=0.01,
        gt=0.0,
        lt=1.0,
        description="Significance level reported beside PSI for the KS / chi-squared tests.",
    )
    drift_window_rows: int = Field(
        default=10_000, ge=100, le=1_000_000, description="Recent requests the service keeps."
    )
    drift_min_rows: int = Field(
        default=500, ge=1, description="Requests needed before the live drift report is given."
    )
    feedback_predictions: int = Field(
        default=100_000,
        ge=100,
        le=10_000_000,
        description="Recent predictions kept by customer id to join with feedback labels.",
    )
    feedback_log_bytes: int = Field(
        default=128 * 1024**2,
        ge=1024**2,
        le=64 * 1024**3,
        description="Memory the prediction log behind /v1/feedback may hold (oldest customers "
        "evicted first), besides its feedback_predictions bound.",
    )
    feedback_window: int = Field(
        default=10_000,
        ge=10,
        le=1_000_000,
        description="Most recent labelled predictions the live ROC-AUC and calibration use.",
    )

    # ---- online learning ----
    online_checkpoint_key: SecretStr | None = Field(
        default=None,
        description="Secret that signs online-learner checkpoints (HMAC-SHA256, at least 16 "
        "bytes); a checkpoint is unpickled only after its signature checks out.",
    )

    @field_validator("online_checkpoint_key")
    @classmethod
    def _strong_checkpoint_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < 16:
            raise ValueError("online checkpoint key must be at least 16 bytes")
        return value

    routing: str | None = Field(
        default=None,
        description="A/B routing: a YAML/JSON file of arms (model references and weights, an "
        "optional shadow), or the same document inline as JSON text; none serves `model` alone.",
    )
    shadow_log: Path | None = Field(
        default=None,
        description="JSON-lines file of shadow scores; defaults to <home>/shadow.jsonl.",
    )
    model_root: Path | None = Field(
        default=None,
        description="Directory of bundles an admin may reload by name ({'bundle': NAME}); "
        "names can never reach outside it.",
    )
    docs_assets: Path | None = Field(
        default=None,
        description="Directory holding swagger-ui-bundle.js and swagger-ui.css (swagger-ui-dist) "
        "to serve Swagger UI at /docs from this host; none: /docs is a plain HTML page made "
        "from the OpenAPI document. Nothing is loaded from a CDN either way.",
    )
    reload_poll_s: float | None = Field(
        default=None,
        gt=0,
        le=86_400,
        description="Re-resolve every model reference (e.g. churn@champion) this often and swap "
        "in a new version when an alias moved; none disables watching.",
    )
    max_in_flight: int = Field(
        default=64, ge=1, le=100_000, description="Prediction requests running at once."
    )
    max_queue: int = Field(
        default=256,
        ge=0,
        le=1_000_000,
        description="Prediction requests waiting for a slot; beyond it 503 + Retry-After.",
    )
    request_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=3_600,
        description="Deadline of a prediction request, queue wait included (504 past it).",
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=3_600,
        description="Time a connection has to send a request head (closed after it; 408 once "
        "the head has begun).",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3_600,
        description="Time a request has to send its whole body after its head (408 after it).",
    )
    keep_alive_s: float = Field(
        default=30.0,
        gt=0,
        le=3_600,
        description="Time an idle keep-alive connection stays open after its last answer.",
    )
    max_connections: int = Field(
        default=2_048,
        ge=1,
        le=1_000_000,
        description="Open connections served at once; a request beyond them is answered 503.",
    )
    max_buffered_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1_024,
        le=64 * 1024**3,
        description="Bytes of unfinished request bodies held over all connections (503 past it).",
    )
    drain_timeout_s: float = Field(
        default=25.0,
        ge=0,
        le=3_600,
        description="On SIGTERM, how long in-flight requests may take to finish before exit.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed by CORS (JSON list); empty (the default) turns CORS off.",
    )
    predict_delay_s: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="TEST ONLY: an awaited pause in every prediction, to simulate a slow model "
        "in drain and deadline tests. Leave 0 in production.",
    )

    @field_validator("model")
    @classmethod
    def _model_reference(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("model reference must not be empty")
        return value

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def compiled_cache(self) -> Path:
        """Where compiled forests are kept between runs (``<home>/compiled``)."""
        return self.home / "compiled"

    def resolved_shadow_log(self) -> Path:
        """The shadow score log in force: the setting, or ``<home>/shadow.jsonl``."""
        return self.shadow_log if self.shadow_log is not None else self.home / "shadow.jsonl"

    def resolved_tracking_uri(self) -> str:
        """The MLflow tracking URI in force: the setting, or ``sqlite:///<home>/mlflow.db``."""
        if self.tracking_uri:
            return self.tracking_uri
        self.home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    def storage_options(self) -> dict[str, object]:
        """fsspec storage options for ``s3://`` paths."""
        if self.s3_endpoint_url:
            return {"client_kwargs": {"endpoint_url": self.s3_endpoint_url}}
        return {}


def load_settings(**overrides: object) -> Settings:
    """The settings in force (environment, then ``overrides`` from flags), validated.

    An invalid value raises :class:`ConfigError` naming its ``CHURNSCALE_*`` variable (a secret's
    value is never shown); the URIs and secrets of valid settings are remembered, so that
    :func:`churnscale.redaction.redact` masks them in every later message.
    """
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        name = f"CHURNSCALE_{field.upper()}" if field else "settings"
        shown = "(hidden)" if _is_secret(field) else first.get("input")
        raise ConfigError(name, expected=first["msg"], received=shown) from None
    except SettingsError as exc:  # a JSON-valued variable (a list) that is not JSON
        field = str(exc).split('"')[1] if str(exc).count('"') >= 2 else ""
        name = f"CHURNSCALE_{field.upper()}" if field else "settings"
        raise ConfigError(name, expected="a JSON value", received="(unparsable)") from None
    remember_secrets(settings)
    return settings


def remember_secrets(settings: Settings) -> None:
    """Have :func:`churnscale.redaction.redact` mask the secrets of ``settings`` from now on:
    the passwords and tokens of its URIs and its keys (a process that gets its settings
    from another, such as a server worker, calls this itself)."""
    remember_uri(settings.tracking_uri, settings.s3_endpoint_url)
    secrets = (
        settings.api_keys,
        settings.admin_api_keys,
        settings.feedback_api_keys,
        settings.online_checkpoint_key,
    )
    for secret in secrets:
        if secret is not None:
            remember(*secret.get_secret_value().split(","))


def _is_secret(field: str) -> bool:
    info = Settings.model_fields.get(field)
    return info is not None and "SecretStr" in str(info.annotation)
