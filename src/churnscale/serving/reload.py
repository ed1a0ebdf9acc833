"""Hot reload: resolve, verify, load and warm a new deployment, then swap it in atomically.

One reload runs at a time. The new models are built in a worker thread while the old ones keep
answering; only a complete, warmed, schema-compatible deployment replaces the old one (one
assignment). Requests already running finish on the deployment they started with. A failed load
(registry down, corrupt or truncated bundle, incompatible schema) leaves the old deployment
serving and ``/readyz`` green, and raises :class:`ReloadFailure` for the admin route to report.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from churnscale.config import Settings
from churnscale.exceptions import ChurnscaleError, IntegrityError
from churnscale.redaction import redact
from churnscale.serving.deployment import Deployment, build_deployment
from churnscale.serving.gateway import ServiceState
from churnscale.serving.routing import ReferenceText, RoutingConfig
from churnscale.serving.security import bundle_by_name

log = logging.getLogger("churnscale.serving")


class ReloadRequest(BaseModel):
    """What to reload: an arm's new registry reference or bundle name; empty re-resolves all."""

    model_config = ConfigDict(extra="forbid")

    model: ReferenceText | None = Field(
        default=None,
        description="Registry reference: NAME, NAME/VERSION or NAME@ALIAS; a bare NAME is the "
        "bundle CHURNSCALE_MODEL_ROOT/NAME when it exists, else the registry's (never a "
        "folder of the working directory).",
    )
    bundle: str | None = Field(
        default=None, description="A bundle directory name under CHURNSCALE_MODEL_ROOT."
    )
    arm: str | None = Field(default=None, description="The arm to change (default: the first).")


class ReloadFailure(Exception):
    """A reload that left the old deployment serving; ``status`` and ``body`` for the answer."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body["detail"])
        self.status = status
        self.body = body


class Reloader:
    """Builds deployments and swaps them into the shared :class:`ServiceState`."""

    def __init__(self, state: ServiceState, settings: Settings, routing: RoutingConfig) -> None:
        self.state = state
        self.settings = settings
        self.routing = routing
        self._lock = asyncio.Lock()
        #: Called with every deployment put in force (the first and each swap).
        self.on_deploy: Callable[[Deployment], None] | None = None

    async def start(self) -> Deployment:
        """Build the first deployment and put it in force."""
        deployment = await asyncio.to_thread(
            build_deployment, self.routing, self.settings, self.state.metrics
        )
        self.state.deployment = deployment
        self._publish(deployment)
        return deployment

    def _publish(self, deployment: Deployment) -> None:
        """Set the model-info gauge to the versions now served."""
        if self.on_deploy is not None:
            self.on_deploy(deployment)
        self.state.metrics.ready.set(1)
        gauge = self.state.metrics.model
        gauge.clear()
        for arm in deployment.arms.values():
            gauge.labels(arm.version, arm.service.predictor.kind).set(1)

    async def reload(self, request: ReloadRequest) -> dict[str, Any]:
        """Reload one arm (or re-resolve every reference) and swap; the report of what changed."""
        async with self._lock:
            started = time.perf_counter()
            previous = self.state.ready_deployment()
            try:
                routing = self._plan(request)
                deployment = await asyncio.to_thread(
                    build_deployment,
                    routing,
                    self.settings,
                    self.state.metrics,
                    previous=previous,
                )
            except Exception as exc:
                raise self._failure(exc, previous) from exc
            changed = _changed(previous, deployment)
            self.state.deployment = deployment  # the atomic swap
            self.routing = routing
            self._publish(deployment)
            outcome = "swapped" if changed else "unchanged"
            self.state.metrics.reloads.labels(outcome).inc()
            if changed:
                log.warning("reloaded models: %s", deployment.versions())
            return {
                "status": outcome,
                "changed": changed,
                "serving": deployment.versions(),
                "seconds": round(time.perf_counter() - started, 3),
            }

    async def watch(self, every: float) -> None:
        """Re-resolve every reference each ``every`` seconds (an alias that moved is swapped)."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.reload(ReloadRequest())
            except ReloadFailure:
                pass  # already logged; the old models keep serving

    def _plan(self, request: ReloadRequest) -> RoutingConfig:
        """The routing with the requested arm's reference replaced."""
        if request.model is not None and request.bundle is not None:
            raise ChurnscaleError("give either model or bundle, not both", field="model")
        reference = request.model
        if request.bundle is not None:
            reference = str(bundle_by_name(request.bundle, self.settings))
        elif reference is not None:
            reference = self._client_reference(reference)
        if reference is None:
            return self.routing
        names = [arm.name for arm in self.routing.arms]
        arm = request.arm or names[0]
        if arm not in names:
            raise ChurnscaleError(f"no arm {arm!r}; arms are {names}", field="arm")
        arms = [
            {**a.model_dump(), "model": reference} if a.name == arm else a.model_dump()
            for a in self.routing.arms
        ]
        return RoutingConfig.from_mapping(
            {**self.routing.model_dump(), "arms": arms}, source="reload"
        )

    def _client_reference(self, text: str) -> str:
        """A client's ``model``: never a path; a bare name is the model root's bundle of that
        name when there is one, else a registry name (never the working directory)."""
        from churnscale.registry.references import ModelRef, parse_reference

        parsed = parse_reference(text, allow_paths=False)
        root = self.settings.model_root
        if isinstance(parsed, ModelRef) and parsed.version is None and parsed.alias is None:
            if root is not None and (root / parsed.name).is_dir():
                return str(bundle_by_name(parsed.name, self.settings))
        return text

    def _failure(self, exc: Exception, previous: Deployment) -> ReloadFailure:
        """Log a failed reload and describe it; the previous deployment stays in force."""
        self.state.metrics.reloads.labels("failed").inc()
        if isinstance(exc, ChurnscaleError):
            status = 422 if isinstance(exc, IntegrityError) else exc.http_status
            message = exc.message
        else:
            status, message = 500, redact(f"{type(exc).__name__}: {exc}")
        log.error("reload failed, still serving %s: %s", previous.versions(), message)
        body = {
            "detail": f"reload failed; still serving the previous models: {message}",
            "error": type(exc).__name__,
            "serving": previous.versions(),
        }
        return ReloadFailure(status, body)


def _changed(old: Deployment, new: Deployment) -> dict[str, dict[str, str]]:
    """Arms whose version changed: name → {from, to}."""
    before = old.versions()
    after = new.versions()
    return {
        name: {"from": before.get(name, {}).get("version", ""), "to": entry["version"]}
        for name, entry in after.items()
        if before.get(name, {}).get("version") != entry["version"]
    }
