"""``ModelBase``: what the model kinds share, so each one writes only what is its own.

A kind subclasses it with its ``model_type``, the files of its bundle, ``predict_matrix`` and
the two halves of its bundle I/O (``_write_model`` and ``_read_model``). Everything else of
:class:`~churnscale.model.contract.ChurnModel` (the Preprocessor in front, the named outputs,
metadata, the drift reference, saving and verified loading) is here once.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from churnscale.exceptions import IntegrityError
from churnscale.features.preprocessor import Preprocessor
from churnscale.model.bundle import (
    BundleParts,
    VerifiedBundle,
    environment,
    read_parts,
    verify_bundle,
    write_bundle,
)
from churnscale.model.contract import CHURN_PROBABILITY, Table
from churnscale.model.reference import DriftReference


class ModelBase(ABC):
    """A fitted Preprocessor, an estimator of some kind, metadata and a drift reference."""

    #: The kind of model; recorded in ``metadata.json`` and used to pick the loader.
    model_type: ClassVar[str]
    #: The bundle files of this model type (besides the preprocessor and metadata).
    model_files: ClassVar[frozenset[str]]
    #: Errors of this type's readers that mean an unreadable bundle (besides ValueError, ...).
    read_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(
        self,
        preprocessor: Preprocessor,
        metadata: Mapping[str, Any] | None = None,
        *,
        reference: DriftReference | None = None,
    ) -> None:
        self.preprocessor = preprocessor
        self.metadata: dict[str, Any] = {**(metadata or {}), "model_type": self.model_type}
        #: The training data's drift reference profile (None for bundles saved without one).
        self.reference = reference

    @property
    def outputs(self) -> tuple[str, ...]:
        """What :meth:`predict` returns, by name: a binary churn model's probability."""
        return (CHURN_PROBABILITY,)

    @property
    def feature_names(self) -> list[str]:
        """Model inputs, in the order of the encoded matrix."""
        return self.preprocessor.feature_names

    @abstractmethod
    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Churn probability of rows already encoded by the Preprocessor."""

    def outputs_of_matrix(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        """Every output (:attr:`outputs`) of rows already encoded by the Preprocessor."""
        return {CHURN_PROBABILITY: self.predict_matrix(matrix)}

    def predict_proba(self, X: Table) -> np.ndarray:
        """Churn probability of every customer of ``X``."""
        return self.predict_matrix(self.preprocessor.transform(X))

    def predict(self, X: Table) -> dict[str, np.ndarray]:
        """Every output of every customer of ``X``, by name."""
        return {CHURN_PROBABILITY: self.predict_proba(X)}

    def predict_proba_one(self, x: Mapping[str, Any]) -> float:
        """Churn probability of one customer given as a dict (equal to the batch result)."""
        return float(self.predict_matrix(self.preprocessor.encode_one(x).reshape(1, -1))[0])

    # ---- bundle ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Publish the model as a bundle directory at ``path`` (atomic; never overwrites)."""
        return write_bundle(
            Path(path),
            preprocessor=self.preprocessor,
            metadata={**self.metadata, "environment": environment(), **self._saved_extra()},
            reference=self.reference,
            write_model=self._write_model,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Load a bundle after verifying every file against its manifest (a ``str`` or a
        ``Path``)."""
        path = Path(path)
        bundle = verify_bundle(path, model_files=cls.model_files, model_type=cls.model_type)
        unreadable: tuple[type[Exception], ...] = (
            ValueError,
            KeyError,
            TypeError,
            *cls.read_errors,
        )
        try:
            parts = read_parts(bundle)
            model = cls._read_model(bundle, parts)
        except unreadable as exc:
            if isinstance(exc, IntegrityError):
                raise
            raise IntegrityError(str(path), f"unreadable bundle: {exc}") from exc
        model.metadata["manifest_sha256"] = parts.manifest_sha256
        return model

    def _saved_extra(self) -> dict[str, Any]:
        """Metadata this model type adds when saved (e.g. its library's version)."""
        return {}

    @abstractmethod
    def _write_model(self, staging: Path) -> None:
        """Write this model type's own files into the bundle's staging directory."""

    @classmethod
    @abstractmethod
    def _read_model(cls, bundle: VerifiedBundle, parts: BundleParts) -> Self:
        """The model from its own files and the bundle's common parts (raise on disagreement)."""
