"""Response schemas of the service (pydantic, for the OpenAPI document and its checks).

The request schema of one customer is generated from the model's own schema at start-up
(see :mod:`churnscale.serving.customer`) and published as the ``Customer`` component.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from churnscale.serving.ids import PydanticId

if TYPE_CHECKING:
    from churnscale.serving.service import PredictionService


class ReasonOut(BaseModel):
    """One feature's push on the score, in log-odds."""

    feature: str
    contribution: float


class PredictResponse(BaseModel):
    """The churn probability of one customer."""

    customer_id: str | None = Field(description="The request's id column, when it had one.")
    churn_probability: float = Field(ge=0.0, le=1.0)
    model_version: str
    outputs: dict[str, float] | None = Field(
        default=None,
        description="A survival model's other outputs: survival_H, churn_within_H, "
        "restricted_mean_H for its horizons H (churn_probability is churn within the last), "
        "and expected_loss_H with a value.",
    )
    reasons: list[ReasonOut] | None = Field(
        default=None, description="Top-3 reason codes, with ?reasons=true or by setting."
    )
    uplift: float | None = Field(
        default=None,
        description="Uplift model: P(outcome | treated) − P(outcome | control); "
        "churn_probability is then P(outcome | control).",
    )
    p_treated: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Uplift model: P(outcome | treated)."
    )
    action: Literal["treat", "control"] | None = Field(
        default=None, description="Uplift model: the deploy-time policy's action."
    )
    experiment_arm: str | None = Field(
        default=None, description="Experiment: the action arm assigned (logged)."
    )
    propensity: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Experiment: the arm's probability."
    )
    value: float | None = Field(
        default=None, ge=0.0, description="The customer's value, when the request gave one."
    )
    expected_loss: float | None = Field(
        default=None,
        ge=0.0,
        description="churn_probability × value (a survival model adds expected_loss_H, "
        "churn_within_H × value, to outputs).",
    )


class BatchPrediction(BaseModel):
    """One row of a batch answer."""

    customer_id: str | None
    churn_probability: float = Field(ge=0.0, le=1.0)
    outputs: dict[str, float] | None = Field(
        default=None,
        description="A survival model's other outputs, as POST /v1/predict answers them "
        "(expected_loss_H too when the row has a value).",
    )
    value: float | None = Field(default=None, ge=0.0, description="The row's value, if given.")
    expected_loss: float | None = Field(
        default=None, ge=0.0, description="churn_probability × value, when the row has a value."
    )
    uplift: float | None = Field(default=None, description="Uplift model: as /v1/predict's uplift.")
    p_treated: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Uplift model: P(outcome | treated)."
    )
    action: Literal["treat", "control"] | None = Field(
        default=None, description="Uplift model: the deploy-time policy's action."
    )


class BatchResponse(BaseModel):
    """Churn probabilities of a batch, in request order."""

    model_version: str
    predictions: list[BatchPrediction]


class ModelInfo(BaseModel):
    """The model a process serves."""

    name: str
    version: str
    predictor: str
    trees: int
    features: list[str]
    schema_: dict[str, Any] = Field(alias="schema")
    data_fingerprint: str | None

    @classmethod
    def of(cls, service: PredictionService) -> dict[str, Any]:
        """The ``/v1/models`` entry of the model ``service`` serves."""
        model = service.model
        return cls(
            name=service.settings.model_name,
            version=service.version,
            predictor=service.predictor.kind,
            trees=service.trees,
            features=model.feature_names,
            schema=service.schema.to_dict(),
            data_fingerprint=model.metadata.get("data_fingerprint"),
        ).model_dump(by_alias=True)


class ModelsResponse(BaseModel):
    """Every model this service answers with (one today; A/B arms later)."""

    models: list[ModelInfo]


class Status(BaseModel):
    """A health answer."""

    status: str
    model_version: str | None = None


class ErrorMessage(BaseModel):
    """An error that is not about one field (400, 404, 413, 415, 503)."""

    detail: str


class Predictions(BaseModel):
    """MLflow / SageMaker scoring answer."""

    predictions: list[float]
    outputs: dict[str, list[float | None]] | None = Field(
        default=None,
        description="A survival model's other outputs, a list per name (survival_H, "
        "churn_within_H, restricted_mean_H; expected_loss_H when some row had a value).",
    )
    value: list[float | None] | None = Field(
        default=None, description="Each row's value (null: none), when some row had one."
    )
    expected_loss: list[float | None] | None = Field(
        default=None, description="predictions × value (null where a row has no value)."
    )
    uplift: list[float] | None = Field(
        default=None,
        description="Uplift model: each row's uplift (predictions are then P(outcome | control)).",
    )
    p_treated: list[float] | None = Field(
        default=None, description="Uplift model: each row's P(outcome | treated)."
    )
    action: list[Literal["treat", "control"]] | None = Field(
        default=None, description="Uplift model: each row's action under the deploy-time policy."
    )


class V2Error(BaseModel):
    """Open Inference Protocol error body."""

    error: str


class V2Tensor(BaseModel):
    """One named tensor (Open Inference Protocol)."""

    name: str
    datatype: str
    shape: list[int]
    data: list[Any] | None = None


class V2ModelMetadata(BaseModel):
    """Open Inference Protocol model metadata."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[V2Tensor]
    outputs: list[V2Tensor]


class V2InferResponse(BaseModel):
    """Open Inference Protocol inference answer."""

    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[V2Tensor]


class ArmsRequest(BaseModel):
    """Customer ids whose A/B arm is wanted."""

    model_config = ConfigDict(extra="forbid")

    customer_ids: list[PydanticId]


class ArmsResponse(BaseModel):
    """The arm of each requested id (same order) and the version each arm serves."""

    experiment: str
    arms: list[str]
    versions: dict[str, str]
