"""AdamW as a few tensor operations (the update of ``torch.optim.AdamW``, decoupled decay).

``torch.optim`` imports ``torch._dynamo`` on first use, which costs several seconds of CPU in
every training process; this class does the same arithmetic without it.
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
        for p in self.parameters:
            if p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """Apply one update from the current gradients."""
        self.steps += 1
        beta1, beta2 = self.betas
        correction1 = 1 - beta1**self.steps
        root2 = math.sqrt(1 - beta2**self.steps)
        for p, m, v in zip(self.parameters, self.first, self.second, strict=True):
            if p.grad is None:
                continue
            p.mul_(1 - self.lr * self.weight_decay)
            m.lerp_(p.grad, 1 - beta1)
            v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            denominator = (v.sqrt() / root2).add_(self.eps)
            p.addcdiv_(m, denominator, value=-self.lr / correction1)
