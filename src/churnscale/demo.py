"""``make demo``: the main job end to end on the embedded synthetic data.

The demo registers its model in the churnscale home in force (``CHURNSCALE_HOME``, by default
``.churnscale`` in the working directory), the same one every later command of the same shell
uses: after it, ``make serve`` serves ``churn@champion``, ``churnscale models list`` shows it and
``churnscale evaluate churn@champion DATA`` finds it. Its data files go to ``--dir``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

#: Columns that would leak the duration (tenure) to the demo's survival model.
SURVIVAL_DROPPED = ("total_charges", "signup_date", "snapshot_date")


def run(*args: str, capture: bool = False) -> str:
    """Run one ``churnscale`` command, stopping the demo if it fails; returns its stdout."""
    command = [sys.executable, "-m", "churnscale", *args]
    print("$ churnscale " + " ".join(args), flush=True)  # noqa: T201
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE if capture else None)
    return done.stdout.decode() if capture else ""


def main() -> None:
    """Generate, ingest, profile, train, evaluate, register, promote and serve."""
    import json

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path(".churnscale/demo"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    home = _home()
    if home.is_relative_to(args.dir.resolve()):
        raise SystemExit(f"--dir {args.dir} holds the churnscale home {home}; pick another --dir")
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    raw = args.dir / "customers.csv"
    fresh = args.dir / "next-month.parquet"
    dataset = args.dir / "dataset"
    report = args.dir / "report.html"
    run("generate", "--rows", str(args.rows), "--format", "csv", "--out", str(raw))
    run("ingest", str(raw), "--out", str(dataset), "--target", "churned", "--id", "customer_id")
    run("profile", str(dataset))
    # A faster learning rate than the default keeps the demo to a few minutes on 2 cores.
    summary = json.loads(
        run(
            *("train", str(dataset), "--name", "churn", "--report", str(report), "--json"),
            *("--learning-rate", "0.1", "--max-rounds", "400", "--early-stopping-rounds", "30"),
            capture=True,
        )
    )
    metrics = summary["metrics"]
    print(  # noqa: T201
        f"trained {summary['model']}: ROC-AUC {metrics['roc_auc']:.4f}, "
        f"PR-AUC {metrics['pr_auc']:.4f}, top-decile lift {metrics['top_decile_lift']:.2f}; "
        f"report {summary['report']}",
        flush=True,
    )
    name, _, version = str(summary["model"]).partition("/")
    run("models", "promote", name, version, "--alias", "champion")
    run("generate", "--rows", str(max(1_000, args.rows // 10)), "--seed", "7", "--out", str(fresh))
    run("evaluate", f"{name}@champion", str(fresh))
    serve_demo(args.dir, model=f"{name}@champion")
    survival = train_survival(raw, args.dir)
    serve_demo(args.dir, model=survival, drop=(*SURVIVAL_DROPPED, "tenure_months"))
    print(  # noqa: T201
        f"\n{summary['model']} is {name}@champion in the churnscale home {home}; "
        "next, in this shell:\n"
        f"  make serve                                    # serves {name}@champion on port 8000\n"
        "  .venv/bin/churnscale models list\n"
        f"  .venv/bin/churnscale evaluate {name}@champion {fresh}",
        flush=True,
    )


def train_survival(raw: Path, directory: Path) -> str:
    """Time to churn on the same customers: tenure is the duration, churned the event. The
    charges total (≈ tenure × monthly charges) and the dates (snapshot − signup = tenure) would
    leak the duration, so they are dropped."""
    import json

    leaks = SURVIVAL_DROPPED
    summary = json.loads(
        run(
            *("train", str(raw), "--id", "customer_id", "--name", "time-to-churn"),
            *("--duration-col", "tenure_months", "--event-col", "churned"),
            *("--horizons", "3,6,12", *(f"--drop={column}" for column in leaks)),
            *("--learning-rate", "0.1", "--max-rounds", "400", "--early-stopping-rounds", "30"),
            *("--report", str(directory / "survival.html"), "--json"),
            capture=True,
        )
    )
    metrics = summary["metrics"]
    print(  # noqa: T201
        f"trained {summary['model']} (time to churn): C-index {metrics['c_harrell']:.4f}, "
        f"IBS {metrics['ibs']:.4f}, AUC@12 {metrics['auc_12']:.4f}; report {summary['report']}",
        flush=True,
    )
    return str(summary["model"])


def _home() -> Path:
    """The churnscale home the demo's commands will use (the setting, or ``.churnscale``)."""
    from churnscale.config import load_settings
    from churnscale.exceptions import ChurnscaleError

    try:
        return load_settings().home.resolve()
    except ChurnscaleError as exc:
        raise SystemExit(f"error: {exc}") from None


def serve_demo(
    directory: Path, *, model: str | None = None, customers: int = 5, drop: tuple[str, ...] = ()
) -> None:
    """Start the service on a free port with ``model`` (default ``<dir>/model``), predict a few
    generated customers over HTTP (each with a value: a year of its charges), print their churn
    probabilities and expected losses, and stop it."""
    import socket
    import urllib.request

    import orjson

    from churnscale.data.synthetic import generate_table

    model = model or str(directory / "model")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    print(f"$ churnscale serve --model {model} --port {port}", flush=True)  # noqa: T201
    command = [sys.executable, "-m", "churnscale", "serve", "--model", model]
    server = subprocess.Popen([*command, "--port", str(port)])
    try:
        _wait_ready(url, server)
        table = generate_table(customers, seed=2026).drop_columns(["churned", *drop])
        rows = table.to_pylist()
        for row in rows:
            # a year of the customer's charges as its value: the answer adds expected_loss
            value = round(12 * float(row["monthly_charges"]), 2)
            body = orjson.dumps({**row, "value": value})  # dates become ISO 8601 text
            request = urllib.request.Request(
                f"{url}/v1/predict", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                answer = orjson.loads(response.read())
            outputs = answer.get("outputs", {})  # a survival model's curve
            print(  # noqa: T201
                f"POST /v1/predict {answer['customer_id']}: "
                f"churn_probability={answer['churn_probability']:.4f} "
                f"value={answer['value']:.2f} expected_loss={answer['expected_loss']:.2f}"
                + "".join(f" {k}={v:.4f}" for k, v in outputs.items()),
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_ready(url: str, server: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the service exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise SystemExit("the service did not become ready")


if __name__ == "__main__":
    main()
