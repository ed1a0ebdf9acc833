"""AdamW as a few tensor operations (the update of ``torch.optim.AdamW``, decoupled decay).

``torch.optim`` imports ``torch._dynamo`` on first use, which costs several seconds of CPU in
every training process; this class does the same arithmetic without it. The update is written
with ``torch._foreach_*`` operations (one kernel per operation for all parameters on a GPU,
not one per parameter), as ``torch.optim.AdamW(foreach=True)`` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


class AdamW:
    """Adam with decoupled weight decay over a fixed list of parameters."""

    def __init__(
        self,
        parameters: Iterable[torch.nn.Parameter],
        *,
        lr: float,
        weight_decay: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.parameters = [p for p in parameters if p.requires_grad]
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.first = [torch.zeros_like(p) for p in self.parameters]
        self.second = [torch.zeros_like(p) for p in self.parameters]
        self.steps = 0

    def zero_grad(self) -> None:
        """Reset every gradient to zero (kept allocated, as DDP's buckets expect)."""
        grads = [p.grad for p in self.parameters if p.grad is not None]
        if grads:
            torch._foreach_zero_(grads)

    @torch.no_grad()
    def step(self) -> None:
        """Apply one update from the current gradients."""
        self.steps += 1
        beta1, beta2 = self.betas
        correction1 = 1 - beta1**self.steps
        root2 = math.sqrt(1 - beta2**self.steps)
        chosen = [
            (p, p.grad, m, v)
            for p, m, v in zip(self.parameters, self.first, self.second, strict=True)
            if p.grad is not None
        ]
        if not chosen:
            return
        params, grads, first, second = (list(t) for t in zip(*chosen, strict=True))
        torch._foreach_mul_(params, 1 - self.lr * self.weight_decay)
        torch._foreach_lerp_(first, grads, 1 - beta1)
        torch._foreach_mul_(second, beta2)
        torch._foreach_addcmul_(second, grads, grads, value=1 - beta2)
        denominator = torch._foreach_sqrt(second)
        torch._foreach_div_(denominator, root2)
        torch._foreach_add_(denominator, self.eps)
        torch._foreach_addcdiv_(params, first, denominator, value=-self.lr / correction1)
