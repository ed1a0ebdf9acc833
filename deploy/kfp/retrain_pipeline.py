"""Kubeflow Pipelines definition of scheduled retraining: a drift check, then retraining.

(No ``from __future__ import annotations`` here: kfp reads the parameter annotations as types.)

Compile (kfp is not in requirements/lock.txt: kfp 2.17 needs protobuf < 7 and an older
requests than the project pins, so it is compiled in its own virtual environment):

    python3 -m venv /tmp/kfp && /tmp/kfp/bin/pip install kfp==2.17.3
    /tmp/kfp/bin/python deploy/kfp/retrain_pipeline.py

which writes ``deploy/kfp/retrain-pipeline.yaml`` (KFP IR YAML, offline; upload it to a KFP
instance and schedule it with a recurring run). ``tests/deploy/test_kfp_pipeline.py`` checks the
compiled file: both steps' commands parse with the real ``churnscale`` CLI.
"""

from pathlib import Path

from kfp import compiler, dsl

IMAGE = "churnscale:0.1.0"
ENV = {
    "CHURNSCALE_HOME": "/tmp/churnscale",
    "CHURNSCALE_TRACKING_URI": "http://mlflow:5000",
}


@dsl.container_component
def drift_check(model: str, data: str, report: dsl.OutputPath(str)):  # type: ignore[no-untyped-def]
    """``churnscale drift``: the new data against the champion's training reference."""
    return dsl.ContainerSpec(
        image=IMAGE,
        command=["churnscale", "drift"],
        args=[data, "--model", model, "--report", report],
    )


@dsl.container_component
def retrain(model: str, data: str, margin: str, time_col: str):  # type: ignore[no-untyped-def]
    """``churnscale retrain``: challenger vs champion on the latest rows, promoted by margin."""
    return dsl.ContainerSpec(
        image=IMAGE,
        command=["churnscale", "retrain"],
        args=["--model", model, "--data", data, "--margin", margin, "--time-col", time_col],
    )


@dsl.pipeline(name="churnscale-retrain", description="Drift check, then guarded retraining.")
def pipeline(  # type: ignore[no-untyped-def]
    model: str = "churn@champion",
    data: str = "s3://churnscale/datasets/customers/",
    margin: str = "0.005",
    time_col: str = "snapshot_date",
):
    """The drift report is kept as an artifact; retraining runs after it whatever it says
    (the margin, not the drift, decides promotion)."""
    check = drift_check(model=model, data=data)
    step = retrain(model=model, data=data, margin=margin, time_col=time_col).after(check)
    for task in (check, step):
        for name, value in ENV.items():
            task.set_env_variable(name, value)


if __name__ == "__main__":
    out = Path(__file__).with_name("retrain-pipeline.yaml")
    compiler.Compiler().compile(pipeline, str(out))
    print(f"wrote {out}")  # noqa: T201
