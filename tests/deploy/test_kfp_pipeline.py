"""The compiled Kubeflow pipeline (deploy/kfp/retrain-pipeline.yaml, made by kfp from
deploy/kfp/retrain_pipeline.py): two container steps whose commands parse with the real CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from churnscale.cli import app

KFP = Path(__file__).resolve().parents[2] / "deploy" / "kfp"


def _spec() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((KFP / "retrain-pipeline.yaml").read_text())
    return document


def _filled(args: list[str], values: dict[str, str]) -> list[str]:
    """Arguments with KFP input placeholders replaced by the pipeline's default values."""
    out = []
    for arg in args:
        for name, value in values.items():
            arg = arg.replace(f"{{{{$.inputs.parameters['{name}']}}}}", value)
        out.append(arg.replace("{{$.outputs.parameters['report'].output_file}}", "/tmp/r.html"))
    return out


def test_the_pipeline_runs_drift_then_retrain_with_commands_the_cli_accepts() -> None:
    spec = _spec()
    assert spec["pipelineInfo"]["name"] == "churnscale-retrain"
    defaults = {
        name: str(p["defaultValue"])
        for name, p in spec["root"]["inputDefinitions"]["parameters"].items()
    }
    assert defaults["model"] == "churn@champion" and defaults["margin"] == "0.005"
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["retrain"]["dependentTasks"] == ["drift-check"]
    group = typer.main.get_command(app)
    executors = spec["deploymentSpec"]["executors"]
    commands = {}
    for executor in executors.values():
        container = executor["container"]
        assert container["image"] == "churnscale:0.1.0"
        name = container["command"][1]
        commands[name] = container
        command = group.commands[name]  # type: ignore[attr-defined]
        context = command.make_context(name, _filled(container["args"], defaults))
        assert context.params["model"] == "churn@champion"
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        assert env["CHURNSCALE_TRACKING_URI"] == "http://mlflow:5000"
    assert sorted(commands) == ["drift", "retrain"]
    retrain = group.commands["retrain"]  # type: ignore[attr-defined]
    args = _filled(commands["retrain"]["args"], defaults)
    assert retrain.make_context("retrain", args).params["margin"] == 0.005
    with pytest.raises(typer.TyperException, match="No such option: --bogus"):
        retrain.make_context("retrain", [*args, "--bogus"])
