"""Building blocks of the prediction service: routing, security and admission limits."""

from churnscale.serving.limits import AdmissionController, deadline
from churnscale.serving.routing import (
    Arm,
    ModelReference,
    RoutingConfig,
    assign_arm,
    parse_model_reference,
)
from churnscale.serving.security import (
    AccessRole,
    ApiKeys,
    AuthDecision,
    presented_key,
    safe_model_path,
)

__all__ = [
    "AccessRole",
    "AdmissionController",
    "ApiKeys",
    "Arm",
    "AuthDecision",
    "ModelReference",
    "RoutingConfig",
    "assign_arm",
    "deadline",
    "parse_model_reference",
    "presented_key",
    "safe_model_path",
]
