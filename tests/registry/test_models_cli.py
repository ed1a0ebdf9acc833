from __future__ import annotations

import os
import subprocess
import sys

from churnscale.config import Settings
from churnscale.registry import Registry
from conftest import BundleMaker


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNSCALE_", "MLFLOW_"))}
    env["CHURNSCALE_HOME"] = str(settings.home)
    return subprocess.run(
        [sys.executable, "-m", "churnscale", "models", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def test_list_show_promote(settings: Settings, make_bundle: BundleMaker) -> None:
    registry = Registry(settings)
    for label in ("a", "b"):
        with registry.run(experiment="churn") as run:
            run.register_bundle(make_bundle(label), name="churn", description=f"model {label}")
    promoted = _cli(settings, "promote", "churn", "1", "--alias", "champion")
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stderr.strip() == "churn@champion -> churn/1"
    listed = _cli(settings, "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if "churn" in line and "model" in line]
    assert len(rows) == 2 and "champion" in rows[0] and "champion" not in rows[1]
    shown = _cli(settings, "show", "churn", "2")
    assert shown.returncode == 0, shown.stderr
    assert registry.show("churn", 2).manifest_sha256 in shown.stdout
    for done in (promoted, listed, shown):
        noise = done.stdout + done.stderr
        assert "View run" not in noise and "INFO" not in noise and "alembic" not in noise


def test_errors_are_one_line(settings: Settings) -> None:
    cases = {
        ("show", "churn", "9"): "error: model 'churn/9'",
        ("promote", "churn", "0", "--alias", "champion"): "error: model version: expected a",
        ("show", "../x"): "error: model name: expected 1-100 characters",
    }
    for args, message in cases.items():
        done = _cli(settings, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith(message), done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
