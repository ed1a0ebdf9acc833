"""``EvaluationReport``: a model judged on labelled rows, shown in Jupyter or saved as HTML."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churnscale.evaluation.assessment import Assessment, report_page, write_report


@dataclass(frozen=True)
class EvaluationReport:
    """What ``ChurnModel.evaluate`` (and training, on its hold-out) found: ROC-AUC, PR-AUC,
    log loss, Brier, calibration, lift and gains by decile, the profit curve, leakage
    warnings and feature contributions, as in the CLI's report.

    In Jupyter the report shows itself (``_repr_html_``); :meth:`to_html` saves the same
    self-contained page; :attr:`metrics` and :meth:`summary` are the figures.
    """

    assessment: Assessment
    title: str
    details: dict[str, Any] = field(default_factory=dict)
    #: Rows of the evaluated data that could not be read (quarantined), if it was a source.
    rejected: int = 0
    #: Where those rows went.
    quarantine: Path | None = None

    @property
    def metrics(self) -> dict[str, float]:
        """The headline metrics: roc_auc, pr_auc, log_loss, brier, ece, top-decile lift."""
        return self.assessment.evaluation.headline()

    def summary(self) -> dict[str, Any]:
        """The JSON summary ``churnscale evaluate --json`` prints (metrics, CV mean ± std,
        best threshold, leakage warnings, top features, rejected rows)."""
        summary = {**self.assessment.summary(), "rejected": self.rejected}
        if self.rejected and self.quarantine is not None:
            summary["quarantine"] = str(self.quarantine)
        return summary

    def to_html(self, path: str | os.PathLike[str]) -> Path:
        """Write the report as one self-contained HTML file (atomically); returns its path."""
        return write_report(self.assessment, Path(path), title=self.title, metadata=self.details)

    def _repr_html_(self) -> str:
        return report_page(self.assessment, title=self.title, metadata=self.details)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in self.metrics.items())
        return f"EvaluationReport({self.title!r}: {shown})"
