"""What one process serves at one moment: the A/B arms, their routing and the shadow model.

A :class:`Deployment` is immutable and replaced whole on reload (one attribute assignment, so
the swap is atomic): a request takes the deployment in force when it starts and finishes on it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churnscale.artifacts import verify_directory
from churnscale.config import Settings
from churnscale.exceptions import ConfigError, IncompatibleModelError, ModelNotFoundError
from churnscale.model.contract import ChurnModel
from churnscale.model.lightgbm import LightGBMModel
from churnscale.model.loading import expect_model, load_bundle, resolve_bundle
from churnscale.model.uplift import UpliftModel
from churnscale.serving.metrics import ServiceMetrics
from churnscale.serving.routing import RoutingConfig, assign_arm
from churnscale.serving.service import PredictionService

SHADOW = "shadow"
log = logging.getLogger("churnscale.serving")


@dataclass(frozen=True, slots=True, eq=False)
class ArmService:
    """One arm's model reference, bundle, service and pre-bound metric children."""

    name: str
    reference: str
    bundle: Path
    service: PredictionService
    requests: Any
    latency: Any
    scores: Any

    @property
    def version(self) -> str:
        """The served model version (``churn/3`` or ``sha256:…``)."""
        return self.service.version


@dataclass(frozen=True, slots=True, eq=False)
class Deployment:
    """Arms in configuration order (the first is primary), the routing table, the shadow."""

    routing: RoutingConfig
    arms: dict[str, ArmService]
    shadow: ArmService | None = None
    primary: ArmService = field(init=False)
    single: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "primary", next(iter(self.arms.values())))
        object.__setattr__(self, "single", len(self.arms) == 1)

    def choose(self, x: dict[str, Any]) -> ArmService:
        """The arm of customer ``x``: sticky by hashed id; the primary arm without an id."""
        if self.single:
            return self.primary
        id_column = self.primary.service.id
        customer = x.get(id_column) if id_column else None
        if customer is None:
            return self.primary
        return self.arms[assign_arm(str(customer), self.routing)]

    def arm_of(self, customer_id: str) -> str:
        """The arm name that serves ``customer_id`` (what :meth:`choose` picks for it)."""
        return self.primary.name if self.single else assign_arm(customer_id, self.routing)

    def versions(self) -> dict[str, Any]:
        """Arm → {model, version}, and the shadow's, for admin answers and logs."""
        out: dict[str, Any] = {
            a.name: {"model": a.reference, "version": a.version} for a in self.arms.values()
        }
        if self.shadow is not None:
            out[SHADOW] = {"model": self.shadow.reference, "version": self.shadow.version}
        return out


def routing_from_settings(settings: Settings) -> RoutingConfig:
    """The routing in force: ``CHURNSCALE_ROUTING`` (file or inline JSON), else one arm.

    The operator's references that name a directory of the working directory become absolute
    paths here, once, at start-up: from then on the service resolves a bare name only in the
    registry (see :func:`_arm`), so a reload can never load a folder of the working directory.
    """
    return _anchored(_routing(settings))


def _routing(settings: Settings) -> RoutingConfig:
    text = settings.routing
    if text is None:
        if settings.model is None:
            raise ConfigError(
                "model", expected="a bundle path or registry reference", received=None
            )
        arms = [{"name": "default", "model": settings.model, "weight": 1}]
        return RoutingConfig.from_mapping({"arms": arms, "buckets": 1}, source="model")
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(
                "CHURNSCALE_ROUTING", expected="valid JSON", received=str(exc)
            ) from None
        return RoutingConfig.from_mapping(data, source="CHURNSCALE_ROUTING")
    return RoutingConfig.load(Path(text).expanduser())


def _anchored(routing: RoutingConfig) -> RoutingConfig:
    """``routing`` with every reference to an existing directory made absolute."""

    def anchor(reference: str) -> str:
        path = Path(reference).expanduser()
        return str(path.resolve()) if path.is_dir() else reference

    data = routing.model_dump()
    data["arms"] = [{**arm, "model": anchor(arm["model"])} for arm in data["arms"]]
    if data.get("shadow") is not None:
        data["shadow"] = anchor(data["shadow"])
    return RoutingConfig.from_mapping(data, source="routing")


def build_deployment(
    routing: RoutingConfig,
    settings: Settings,
    metrics: ServiceMetrics,
    *,
    previous: Deployment | None = None,
) -> Deployment:
    """Resolve, verify, load and warm every arm (reusing unchanged ones), then check schemas."""
    reused = {} if previous is None else _loaded(list(previous.arms.values()))
    arms = {arm.name: _arm(arm.name, arm.model, settings, metrics, reused) for arm in routing.arms}
    shadow = None
    if routing.shadow is not None:
        # The shadow thread never shares a Predictor (its output buffer) with the hot path.
        kept = [] if previous is None or previous.shadow is None else [previous.shadow]
        shadow = _arm(SHADOW, routing.shadow, settings, metrics, _loaded(kept))
    reference = previous.primary if previous is not None else next(iter(arms.values()))
    for candidate in [*arms.values(), *([shadow] if shadow else [])]:
        check_compatible(reference.service, candidate)
    return Deployment(routing, arms, shadow)


def _loaded(arms: list[ArmService]) -> dict[str, PredictionService]:
    return {str(a.service.model.metadata["manifest_sha256"]): a.service for a in arms}


def _arm(
    name: str,
    reference: str,
    settings: Settings,
    metrics: ServiceMetrics,
    reused: dict[str, PredictionService],
) -> ArmService:
    bundle = resolve_bundle(reference, settings, working_dir=False)
    if not bundle.is_dir():
        raise ModelNotFoundError(reference, "no bundle directory at this path")
    digest = str(verify_directory(bundle)["manifest_sha256"])
    service = reused.get(digest)
    if service is None:
        model = _servable(load_bundle(bundle, settings), reference)
        service = PredictionService(model, settings)
        service.warm()
        log.info("loaded %s (%s) for arm %s", reference, service.version, name)
    return ArmService(
        name=name,
        reference=reference,
        bundle=bundle,
        service=service,
        requests=metrics.arm_requests.labels(name, service.version),
        latency=metrics.arm_latency.labels(name),
        scores=metrics.arm_scores.labels(name),
    )


def _servable(model: ChurnModel, reference: str) -> LightGBMModel | UpliftModel:
    """A model the service can answer with: a LightGBM churn model or an uplift model."""
    if isinstance(model, UpliftModel):
        return model
    return expect_model(model, LightGBMModel, reference=reference, purpose="serving")


def check_compatible(current: PredictionService, candidate: ArmService) -> None:
    """Refuse a model whose input columns (names and roles) or id column differ."""
    old = _signature(current)
    new = _signature(candidate.service)
    if old == new:
        return
    missing = sorted(set(old[1]) - set(new[1]))
    extra = sorted(set(new[1]) - set(old[1]))
    reason = f"input columns differ (missing {missing}, new {extra})"
    if old[0] != new[0]:
        reason = f"id column {new[0]!r} instead of {old[0]!r}"
    elif not missing and not extra:
        reason = "input column roles differ"
    raise IncompatibleModelError(candidate.reference, reason)


def _signature(service: PredictionService) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    columns = service.schema.without_target().columns
    return service.id, tuple((c.name, c.role.value) for c in columns)
