"""The demo's serving step: start the service, predict over HTTP, stop it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from churnscale.demo import serve_demo

pytestmark = pytest.mark.integration


def test_demo_serves_and_prints_probabilities(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(bundle, tmp_path / "model")
    serve_demo(tmp_path, customers=3)
    lines = [line for line in capsys.readouterr().out.splitlines() if "POST /v1/predict" in line]
    assert len(lines) == 3
    pattern = r"churn_probability=(0\.\d{4}) value=(\d+\.\d{2}) expected_loss=(\d+\.\d{2})$"
    for line in lines:
        found = re.search(pattern, line)
        assert found, line
        probability, value, loss = (float(g) for g in found.groups())
        assert loss == pytest.approx(probability * value, abs=0.01 + 5e-5 * value)
