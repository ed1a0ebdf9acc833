"""The training reference profile a bundle carries: per-feature histograms and the
predicted-probability one (``reference.json``), so drift can be measured later without the
training data. Built by :func:`churnscale.monitoring.reference.build_reference`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnscale.exceptions import SchemaError
from churnscale.features.histograms import Histogram

REFERENCE_FILE = "reference.json"
FORMAT_VERSION = 1
PREDICTION = "churn_probability"


@dataclass
class DriftReference:
    """What the model's inputs and outputs looked like on its training data."""

    features: list[Histogram]
    prediction: Histogram
    created: str = ""

    @property
    def rows(self) -> int:
        """Rows the reference was built from."""
        return self.prediction.rows

    def feature(self, name: str) -> Histogram:
        """The histogram of feature ``name``."""
        for histogram in self.features:
            if histogram.name == name:
                return histogram
        raise SchemaError("the drift reference has no such feature", column=name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready document."""
        return {
            "format_version": FORMAT_VERSION,
            "created": self.created,
            "rows": self.rows,
            "features": [h.to_dict() for h in self.features],
            "prediction": self.prediction.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReference:
        """Inverse of :meth:`to_dict`."""
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported reference format {data.get('format_version')!r}")
        return cls(
            features=[Histogram.from_dict(h) for h in data["features"]],
            prediction=Histogram.from_dict(data["prediction"]),
            created=str(data.get("created", "")),
        )

    def save(self, path: Path) -> None:
        """Write the reference as JSON."""
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> DriftReference:
        """Read a reference written by :meth:`save`."""
        return cls.from_dict(json.loads(path.read_text()))

    def check_features(self, names: list[str]) -> None:
        """Refuse a reference whose features are not the model's, in order."""
        mine = [h.name for h in self.features]
        if mine != names:
            raise SchemaError(
                "the drift reference does not match the model's features",
                unknown=[n for n in mine if n not in names],
                missing=[n for n in names if n not in mine],
            )
