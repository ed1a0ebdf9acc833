"""Smaller forms of a trained MLP: fp16 weights, int8 dynamic quantization, magnitude pruning.

Each returns a new :class:`MlpModel` (the original is untouched) whose ``variant`` names the
stored form, so ``save`` writes the compact tensors (see :mod:`churnscale.model.weights`) and
``load`` gives back the same predictions.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import prune

from churnscale.exceptions import ConfigError
from churnscale.model.mlp import MlpModel
from churnscale.model.weights import parse_variant, quantize_int8


def compress(model: MlpModel, variant: str) -> MlpModel:
    """``model`` in the stored form ``variant``: float32, fp16, int8 or pruned[:S]."""
    if model.variant != "float32":
        raise ConfigError("MODEL", expected="a float32 MLP bundle", received=model.variant)
    kind, sparsity = parse_variant(variant)
    if kind == "fp16":
        return _derived(model, to_fp16(model.network), "fp16")
    if kind == "int8":
        return _derived(model, quantize_int8(model.network), "int8")
    if kind == "pruned":
        return _derived(model, prune_magnitude(model.network, sparsity), f"pruned:{sparsity:g}")
    return model


def to_fp16(net: nn.Module) -> nn.Module:
    """A copy whose learned weights are rounded to float16 (computed in float32)."""
    out = copy.deepcopy(net)
    with torch.no_grad():
        for parameter in out.parameters():
            parameter.copy_(parameter.half().float())
    return out.eval()


def prune_magnitude(net: nn.Module, sparsity: float) -> nn.Module:
    """A copy with the smallest ``sparsity`` share of all dense-layer weights set to zero."""
    out = copy.deepcopy(net)
    layers = [(m, "weight") for m in out.modules() if isinstance(m, nn.Linear)]
    prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=sparsity)
    for module, name in layers:
        prune.remove(module, name)  # type: ignore[no-untyped-call]
    return out.eval()


def dense_sparsity(net: nn.Module) -> float:
    """Share of zero weights over the dense layers."""
    weights = [m.weight for m in net.modules() if isinstance(m, nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / max(sum(w.numel() for w in weights), 1)


def _derived(model: MlpModel, network: nn.Module, variant: str) -> MlpModel:
    metadata = {**model.metadata, "compressed_from": model.metadata.get("manifest_sha256")}
    return MlpModel(
        model.preprocessor,
        network,
        model.config,
        metadata,
        variant=variant,
        reference=model.reference,
    )
