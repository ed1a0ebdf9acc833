"""The Dask cluster a distributed run uses: connecting, memory policy, memory pre-check, watchdog.

``local:N`` starts a :class:`distributed.LocalCluster` of ``N`` single-threaded worker processes
whose nannies never pause or spill and whose scheduler never retries a task on another worker,
so a worker that runs out of memory dies once and the run fails, instead of restarting forever.
``tcp://HOST:PORT`` connects to an existing scheduler, whose policies are its own; the
:class:`Watchdog` then turns a lost or restarted worker into a :class:`TrainingError`.

``tls://HOST:PORT`` connects with mutual TLS, with the certificates of Dask's own security
configuration (``DASK_DISTRIBUTED__COMM__TLS__CA_FILE``, ``…__CLIENT__CERT``,
``…__CLIENT__KEY``, or the same keys in a Dask YAML file), encryption required. A ``tls://``
address without them, or with a file that cannot be read, is refused with one line before any
work; a scheduler that does not present a certificate signed by that CA is not reached.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import dask
import psutil
from distributed import Client, LocalCluster
from distributed.security import Security
from distributed.worker_memory import parse_memory_limit

from churnscale.exceptions import ConfigError, TrainingError

T = TypeVar("T")

#: Worker and scheduler settings of a cluster we start: no pause, no spill, no retries.
MEMORY_POLICY: dict[str, Any] = {
    "distributed.worker.memory.target": False,
    "distributed.worker.memory.spill": False,
    "distributed.worker.memory.pause": False,
    "distributed.worker.memory.terminate": 0.95,
    "distributed.scheduler.allowed-failures": 0,
}
#: Memory of an idle worker process (Python, Dask, pandas, pyarrow and LightGBM loaded).
WORKER_BASE_BYTES = 256 * 2**20
#: Share of a worker's memory limit a run may plan to use (Dask pauses workers at 80%).
USABLE_FRACTION = 0.8
#: LightGBM's state per training row besides the binned features: gradients, hessians,
#: scores, label, bagging indices.
LGBM_ROW_BYTES = 32


@dataclass(frozen=True)
class ClusterAddress:
    """A parsed ``--cluster`` value: ``local:N`` or a scheduler address."""

    local_workers: int | None
    address: str | None

    @classmethod
    def parse(cls, value: str) -> ClusterAddress:
        """Accept ``local:N`` (N >= 1) or ``tcp://HOST:PORT`` / ``tls://HOST:PORT``."""
        if value.startswith("local:"):
            count = value.removeprefix("local:")
            if not count.isdigit() or int(count) < 1:
                raise ConfigError("--cluster", expected="local:N with N >= 1", received=value)
            return cls(int(count), None)
        if value.startswith(("tcp://", "tls://")) and ":" in value.split("://", 1)[1]:
            if value.startswith("tls://"):
                tls_security(value)  # refuse missing certificates before any work
            return cls(None, value)
        raise ConfigError(
            "--cluster", expected="local:N or tcp://HOST:PORT (tls://HOST:PORT)", received=value
        )


#: Dask configuration keys a ``tls://`` client needs, as environment variables.
TLS_VARIABLES = {
    "tls_ca_file": "DASK_DISTRIBUTED__COMM__TLS__CA_FILE",
    "tls_client_cert": "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT",
    "tls_client_key": "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY",
}


def tls_security(address: str) -> Security:
    """Mutual-TLS settings for the scheduler at ``address`` from Dask's configuration
    (encryption required); a missing CA or client certificate, or an unreadable file, is a
    :class:`ConfigError` naming the variable to set."""
    security = Security(require_encryption=True)  # type: ignore[no-untyped-call]
    for attribute in ("tls_ca_file", "tls_client_cert"):
        if not getattr(security, attribute):
            raise ConfigError(
                TLS_VARIABLES[attribute],
                expected=f"a PEM file for the tls:// scheduler {address} (see the README, "
                "'Dask cluster security'; the key may be in the certificate file or in "
                f"{TLS_VARIABLES['tls_client_key']})",
                received=None,
            )
    for attribute, variable in TLS_VARIABLES.items():
        path = getattr(security, attribute)
        if path and not os.access(path, os.R_OK):
            raise ConfigError(variable, expected="a readable PEM file", received=path)
    return security


def local_memory_limit(workers: int, memory_limit: str | int) -> int:
    """Bytes each of ``workers`` local workers may use (``"auto"``: an equal share of RAM)."""
    limit = parse_memory_limit(
        memory_limit, 1, total_cores=workers, logger=logging.getLogger(__name__)
    )
    return int(limit or psutil.virtual_memory().total)


@contextmanager
def cluster_client(
    value: str, *, memory_limit: str | int = "auto", worker_ttl: str = "300s"
) -> Iterator[Client]:
    """A client of the cluster ``value`` names; a local cluster lives only as long as it.

    A local cluster's scheduler drops a worker that sent no heartbeat for ``worker_ttl`` (one
    that is stopped or hung), which the :class:`Watchdog` then reports.
    """
    parsed = ClusterAddress.parse(value)
    if parsed.address is not None:
        try:
            secure = tls_security(parsed.address) if parsed.address.startswith("tls://") else None
            client = Client(  # type: ignore[no-untyped-call]
                parsed.address, timeout="10s", set_as_default=False, security=secure
            )
        except OSError as exc:
            message = f"cannot reach the Dask scheduler at {parsed.address}: {exc}"
            raise TrainingError(message) from exc
        with client:
            yield client
        return
    with dask.config.set({**MEMORY_POLICY, "distributed.scheduler.worker-ttl": worker_ttl}):
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=parsed.local_workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit,
            host="127.0.0.1",
            dashboard_address=None,
            # the scheduler's HTTP server (metrics) on a free loopback port, not 8787, which
            # another cluster may hold (distributed then warns and picks another port)
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.ERROR,
        )
    client = Client(cluster, set_as_default=False)  # type: ignore[no-untyped-call]
    with cluster, client:
        yield client


def estimate_worker_bytes(
    *, rows: int, features: int, workers: int, holdout_fraction: float, early_stop_fraction: float
) -> int:
    """Peak memory one worker needs to train on its share of ``rows`` stored rows.

    Its encoded rows (float32 features and label), the copy ``lightgbm.dask`` concatenates
    them into, LightGBM's binned data (one byte a feature) and training state, the full
    early-stopping set every worker scores, and the idle process itself.
    """
    fit_rows = rows * (1.0 - holdout_fraction)
    per_worker = math.ceil(fit_rows / workers)
    matrix = per_worker * (features + 1) * 4
    training = per_worker * (features + LGBM_ROW_BYTES)
    early_stop = math.ceil(fit_rows * early_stop_fraction) * (features + 1) * 4
    return WORKER_BASE_BYTES + 2 * matrix + training + early_stop


def check_worker_memory(need: int, limits: dict[str, int], *, rows: int, features: int) -> None:
    """Refuse a run that would not fit in the smallest worker's usable memory."""
    worker, limit = min(limits.items(), key=lambda kv: kv[1])
    if need > limit * USABLE_FRACTION:
        raise TrainingError(
            f"training {rows:,} rows x {features} features needs about {_gib(need)} per "
            f"worker, but worker {worker} has a memory limit of {_gib(limit)} (runs may use "
            f"{USABLE_FRACTION:.0%} of it); use more workers or more memory per worker"
        )


def worker_limits(client: Client) -> dict[str, int]:
    """Memory limit of every worker (its machine's RAM when it has none)."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    total = psutil.virtual_memory().total
    return {addr: int(w.get("memory_limit") or total) for addr, w in workers.items()}


def _gib(n: int | float) -> str:
    return f"{n / 2**30:.2f} GiB"


class Watchdog:
    """Runs a blocking cluster call in a thread and fails fast when a worker leaves."""

    def __init__(self, client: Client, *, poll_seconds: float = 0.25) -> None:
        self.client = client
        self.poll_seconds = poll_seconds
        self.memory: dict[str, tuple[int, int]] = {}

    def run(self, call: Callable[[], T]) -> T:
        """``call()``, or a :class:`TrainingError` naming any worker lost meanwhile."""
        start = self._workers() or {}
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["result"] = call()
            except BaseException as exc:  # handed to the waiting thread below
                box["error"] = exc

        thread = threading.Thread(target=target, name="churnscale-train", daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(self.poll_seconds)
            now = self._workers() if thread.is_alive() else None
            lost = sorted(set(start) - set(now)) if now is not None else []
            if lost:
                raise TrainingError(self._lost_message(lost))
        if "error" in box:
            now = self._workers()
            lost = sorted(set(start) - set(now)) if now is not None else []
            reason = self._lost_message(lost) if lost else "training failed on the cluster"
            error = box["error"]
            raise TrainingError(f"{reason}: {type(error).__name__}: {error}") from error
        result: T = box["result"]
        return result

    def _workers(self) -> dict[str, Any] | None:
        """The scheduler's workers now, or None when it did not answer this time."""
        try:
            workers: dict[str, Any] = self.client.scheduler_info(n_workers=-1)["workers"]
        except OSError:  # includes time-outs; the training call itself will fail if it is gone
            return None
        for addr, info in workers.items():
            used = int(info.get("metrics", {}).get("memory", 0))
            self.memory[addr] = (used, int(info.get("memory_limit") or 0))
        return workers

    def _lost_message(self, lost: list[str]) -> str:
        parts = []
        for addr in lost:
            used, limit = self.memory.get(addr, (0, 0))
            near_limit = limit and used >= 0.7 * limit
            if near_limit:
                detail = f"last seen using {_gib(used)} of its {_gib(limit)} limit: out of memory"
            elif limit:
                detail = (
                    "its process died or lost its connection; a worker that exceeds its "
                    f"{_gib(limit)} memory limit is ended by its nanny"
                )
            else:
                detail = "its process died or lost its connection"
            parts.append(f"worker {addr} left the cluster during training ({detail})")
        return "; ".join(parts)
