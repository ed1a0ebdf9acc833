"""The network's tensors as stored in ``weights.safetensors``, for each stored form.

- ``float32``: the state dict as it is.
- ``fp16``: learned weights rounded to float16 (the scaling buffers stay float32: a date in
  days since 1970 would lose whole days in float16); widened back to float32 at load.
- ``int8``: each dense layer's weight as int8 with its per-tensor scale and zero point (the
  form ``torch.ao.quantization.quantize_dynamic`` keeps); the loaded network is the same
  dynamically quantized network, with int8 matrix products.
- ``pruned:S``: dense-layer weights in compressed sparse rows (values, int32 column indices,
  row pointers), so a share S of zeros is not stored.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from churnscale.exceptions import ConfigError, IntegrityError
from churnscale.model.network import ChurnNet, NetworkConfig

_KEEP_FLOAT32 = ("mean", "std", "missing_code")


def parse_variant(variant: str) -> tuple[str, float]:
    """``"pruned:0.9"`` → ("pruned", 0.9); other forms have sparsity 0."""
    kind, _, rest = variant.partition(":")
    if kind in ("float32", "fp16", "int8") and not rest:
        return kind, 0.0
    if kind == "pruned":
        try:
            sparsity = float(rest) if rest else 0.8
        except ValueError:
            sparsity = -1.0
        if 0.0 < sparsity < 1.0:
            return kind, sparsity
        raise ConfigError("--format", expected="pruned:S with S in (0, 1)", received=variant)
    raise ConfigError("--format", expected="float32, fp16, int8 or pruned[:S]", received=variant)


def encode_network(net: nn.Module, variant: str) -> dict[str, torch.Tensor]:
    """The tensors to store for ``net`` in the stored form ``variant``."""
    kind, _ = parse_variant(variant)
    if kind == "int8":
        return _encode_int8(net)
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    if kind == "fp16":
        return {k: v if _keeps_float32(k, v) else v.half() for k, v in state.items()}
    if kind == "pruned":
        return _encode_sparse(state)
    return state


def decode_network(
    config: NetworkConfig, variant: str, tensors: dict[str, torch.Tensor], *, where: str
) -> nn.Module:
    """Rebuild the network stored as ``tensors`` in form ``variant``."""
    try:
        kind, _ = parse_variant(variant)
    except ConfigError as exc:
        raise IntegrityError(where, f"unknown stored form {variant!r}") from exc
    net = ChurnNet(config)
    try:
        if kind == "int8":
            return _decode_int8(net, tensors)
        state = _decode_sparse(tensors) if kind == "pruned" else tensors
        net.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        )
    except (RuntimeError, KeyError, ValueError) as exc:
        raise IntegrityError(where, f"weights do not fit network.json: {exc}") from exc
    return net.eval()


def _keeps_float32(name: str, tensor: torch.Tensor) -> bool:
    return not tensor.is_floating_point() or name.rsplit(".", 1)[-1] in _KEEP_FLOAT32


def _linear_weights(state: dict[str, torch.Tensor]) -> list[str]:
    return [k for k, v in state.items() if k.startswith("mlp.") and k.endswith(".weight")]


def _encode_sparse(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = dict(state)
    for name in _linear_weights(state):
        weight = out.pop(name)
        rows, columns = torch.nonzero(weight, as_tuple=True)  # row-major order
        counts = torch.bincount(rows, minlength=weight.shape[0])
        pointers = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
        out[f"{name}.values"] = weight[rows, columns].contiguous()
        out[f"{name}.columns"] = columns.to(torch.int32).contiguous()
        out[f"{name}.rows"] = pointers.to(torch.int32).contiguous()
        out[f"{name}.shape"] = torch.tensor(list(weight.shape), dtype=torch.int64)
    return out


def _decode_sparse(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = dict(tensors)
    for key in [k for k in tensors if k.endswith(".weight.values")]:
        name = key.removesuffix(".values")
        values = state.pop(key)
        columns = state.pop(f"{name}.columns").long()
        pointers = state.pop(f"{name}.rows").long()
        height, width = (int(n) for n in state.pop(f"{name}.shape"))
        counts = pointers.diff()
        valid = (
            pointers.numel() == height + 1
            and int(pointers[-1]) == values.numel() == columns.numel()
            and bool((counts >= 0).all())
            and bool(((columns >= 0) & (columns < width)).all())
        )
        if not valid:
            raise ValueError(f"{name}: sparse rows, columns and values do not agree")
        dense = torch.zeros((height, width), dtype=values.dtype)
        dense[torch.repeat_interleave(torch.arange(height), counts), columns] = values
        state[name] = dense
    return state


def quantize_int8(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with every dense layer dynamically quantized to int8."""
    from torch.ao.quantization import quantize_dynamic

    with _quiet_quantization():
        quantized: nn.Module = quantize_dynamic(  # type: ignore[no-untyped-call]
            copy.deepcopy(net).eval(), {nn.Linear}, dtype=torch.qint8
        )
    return quantized


@contextmanager
def _quiet_quantization() -> Iterator[None]:
    """torch 2.13 warns that ``torch.ao.quantization`` moves to torchao; it still works here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantiz.*")
        yield


def _quantized_layers(net: nn.Module) -> dict[str, nn.Module]:
    from torch.ao.nn.quantized.dynamic import Linear as QuantizedLinear

    return {n: m for n, m in net.named_modules() if isinstance(m, QuantizedLinear)}


def _encode_int8(net: nn.Module) -> dict[str, torch.Tensor]:
    layers = _quantized_layers(net)
    if not layers:
        raise ConfigError(
            "variant", expected="a network quantized by quantize_int8", received="float"
        )
    out: dict[str, torch.Tensor] = {}
    for key, value in net.state_dict().items():
        if "_packed_params" not in key and "scale" not in key and "zero_point" not in key:
            out[key] = value.detach().contiguous()
    for name, layer in layers.items():
        weight, bias = layer._weight_bias()  # type: ignore[operator]
        out[f"{name}.weight.int8"] = weight.int_repr().contiguous()
        out[f"{name}.weight.scale"] = torch.tensor([weight.q_scale()], dtype=torch.float64)
        out[f"{name}.weight.zero_point"] = torch.tensor([weight.q_zero_point()])
        if bias is not None:
            out[f"{name}.bias"] = bias.detach().contiguous()
    return out


def _decode_int8(net: ChurnNet, tensors: dict[str, torch.Tensor]) -> nn.Module:
    plain = {k: v for k, v in tensors.items() if ".weight." not in k and not _is_linear_bias(k)}
    state = net.state_dict()
    for key in _linear_weights(state):
        base = key.removesuffix(".weight")
        scale = float(tensors[f"{key}.scale"][0])
        plain[key] = tensors[f"{key}.int8"].float() * scale
        plain[f"{base}.bias"] = tensors[f"{base}.bias"]
    net.load_state_dict(plain)
    quantized = quantize_int8(net)
    for name, layer in _quantized_layers(quantized).items():
        with _quiet_quantization():
            weight = torch._make_per_tensor_quantized_tensor(
                tensors[f"{name}.weight.int8"],
                float(tensors[f"{name}.weight.scale"][0]),
                int(tensors[f"{name}.weight.zero_point"][0]),
            )
            layer.set_weight_bias(weight, tensors[f"{name}.bias"])  # type: ignore[operator]
    return quantized


def _is_linear_bias(key: str) -> bool:
    return key.startswith("mlp.") and key.endswith(".bias")
