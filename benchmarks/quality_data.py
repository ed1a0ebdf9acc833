"""The public datasets and folds of ``benchmarks/quality.py``, shared with its peer runner.

Imports only pandas, numpy and scikit-learn, so the peers' own environment (CatBoost, FLAML,
AutoGluon: not project dependencies) can load the same rows and folds.

Every system gets the same cleaned frame (identifiers and constant leaks dropped as the
anchors in ``../shared/datasets/README.md`` describe; Telco's blank ``TotalCharges`` as
missing) and the same 5 folds: ``StratifiedKFold(5, shuffle=True, random_state=42)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
FOLDS = 5
FOLD_SEED = 42
#: The label column every prepared frame has (0/1).
LABEL = "churn_label"


@dataclass(frozen=True)
class Public:
    """A public churn file: its target, identifier and the columns no model may read."""

    name: str
    file: str
    target: str
    positive: str
    id: str | None = None
    drop: tuple[str, ...] = ()


DATASETS = {
    "telco": Public(
        "telco", "telco/WA_Fn-UseC_-Telco-Customer-Churn.csv", "Churn", "Yes", id="customerID"
    ),
    "bank": Public(
        "bank",
        "bank_churn_modelling/Churn_Modelling.csv",
        "Exited",
        "1",
        id="CustomerId",
        drop=("RowNumber", "Surname"),
    ),
    "bigml": Public("bigml", "telecom_orange_bigml/telecom_churn.csv", "Churn", "True"),
}


def load(name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The cleaned frame (id column kept, raw target replaced by ``LABEL``) and its labels."""
    public = DATASETS[name]
    frame = pd.read_csv(SHARED / public.file, dtype=str, keep_default_na=False)
    frame = frame.drop(columns=list(public.drop))
    y = (frame.pop(public.target).str.strip() == public.positive).to_numpy(dtype=np.int8)
    for column in frame.columns:
        if column == public.id:
            continue
        values = frame[column].str.strip()
        numeric = pd.to_numeric(values.replace("", np.nan), errors="coerce")
        if numeric.notna().sum() >= 0.99 * (values != "").sum():  # Telco's " " → missing
            frame[column] = numeric
        else:
            frame[column] = values.replace("", np.nan)
    frame[LABEL] = y
    return frame, y


def folds(y: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(fold, train indices, test indices) of the benchmark's 5 stratified folds."""
    splitter = StratifiedKFold(FOLDS, shuffle=True, random_state=FOLD_SEED)
    for fold, (train, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
        yield fold, train, test


def features(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """The model inputs: no id, no label; text columns as pandas ``category``."""
    public = DATASETS[name]
    x = frame.drop(columns=[c for c in (public.id, LABEL) if c])
    for column in x.columns:
        if x[column].dtype == object or str(x[column].dtype).startswith("str"):
            x[column] = x[column].astype("category")
    return x
