from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest

from churnscale.evaluation import (
    Evaluation,
    LeakageWarning,
    evaluate_scores,
    render_report,
    summarize_folds,
)
from churnscale.exceptions import EvaluationError

EMBEDDED = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z]+:)?//""", re.IGNORECASE)


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    rng = np.random.default_rng(5)
    p = rng.beta(2.0, 5.0, 3_000)
    y = (rng.random(p.size) < p).astype(np.int8)
    return evaluate_scores(y, np.clip(p + rng.normal(0, 0.05, p.size), 0, 1), contact_cost=3.0)


def test_full_report_is_self_contained_and_escaped(evaluation: Evaluation, tmp_path: Path) -> None:
    importance = {f"feature_{i}": float(30 - i) for i in range(25)}
    importance["<script>alert(1)</script>"] = 99.0
    importance["$x_1$ price"] = 98.0  # would be mathtext if matplotlib parsed it
    warning = LeakageWarning("<b>refund</b>", 0.999, "feature '<b>refund</b>' leaks")
    path = render_report(
        evaluation,
        path=tmp_path / "out" / "report.html",
        title="Churn <model> v1",
        importance=importance,
        contributions={name: value / 100 for name, value in importance.items()},
        folds=summarize_folds([evaluation, evaluation]),
        warnings=[warning],
        metadata={"dataset": "fp-<123>", "tracking": "https://mlflow.example/runs/1"},
    )
    html = path.read_text(encoding="utf-8")
    assert path == tmp_path / "out" / "report.html"
    images = EMBEDDED.findall(html)
    assert len(images) == 7  # ROC, PR, calibration, profit, gains+lift, importance, contributions
    assert all(base64.b64decode(image).startswith(b"\x89PNG\r\n\x1a\n") for image in images)
    assert EXTERNAL.search(html) is None
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>refund</b>" not in html and "&lt;b&gt;refund&lt;/b&gt;" in html
    assert "Churn &lt;model&gt; v1" in html
    assert "Possible target leakage" in html
    assert "Cross-validation" in html and "fp-&lt;123&gt;" in html
    assert f"{evaluation.roc_auc:.3f}" in html


def test_minimal_report_has_the_five_evaluation_plots(
    evaluation: Evaluation, tmp_path: Path
) -> None:
    path = render_report(evaluation, path=tmp_path / "report.html", title="holdout")
    html = path.read_text(encoding="utf-8")
    assert len(EMBEDDED.findall(html)) == 5
    assert "Possible target leakage" not in html
    assert "Cross-validation" not in html
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left


def test_directory_as_path_is_an_error(evaluation: Evaluation, tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="path: expected a file path for the report"):
        render_report(evaluation, path=tmp_path, title="x")
