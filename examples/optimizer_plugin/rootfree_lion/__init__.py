"""Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms", arXiv 2302.06675)
as a rootfree plug-in: the optimizer, and the spec its entry point hands to rootfree.

    c <- beta1 m + (1 - beta1) g
    p <- p (1 - lr weight_decay) - lr sign(c)
    m <- beta2 m + (1 - beta2) g
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from rootfree.optim import OptimizerSpec, PaperName, SearchRange


class Lion(torch.optim.Optimizer):
    """Sign descent on an interpolation of the gradient and its momentum (decoupled decay)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
    ) -> None:
        if lr <= 0 or not all(0.0 <= b < 1.0 for b in betas) or weight_decay < 0:
            raise ValueError(f"Lion: invalid lr {lr}, betas {betas} or weight_decay {weight_decay}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                m = self.state[p].setdefault("exp_avg", torch.zeros_like(p))
                direction = (beta1 * m + (1 - beta1) * p.grad).sign_()
                p.mul_(1 - group["lr"] * group["weight_decay"]).add_(direction, alpha=-group["lr"])
                m.lerp_(p.grad, 1 - beta2)
        return loss


SPEC = OptimizerSpec(
    "lion",
    Lion,
    family="sign",
    paper_names={
        "lr": PaperName("lr"),
        "momentum": PaperName("betas", index=1),  # the momentum EMA; betas[0] mixes for the sign
        "weight_decay": PaperName("weight_decay"),
    },
    defaults={"lr": 1e-4, "momentum": 0.99, "weight_decay": 0.0},
    search={
        "lr": SearchRange(1e-5, 1e-2),
        "momentum": SearchRange(0.9, 0.999),
        "weight_decay": SearchRange(1e-4, 1.0),
    },
    description="Lion, sign descent with momentum (Chen et al., 2023), from the example plug-in",
    notes="The authors' defaults (lr 1e-4, betas (0.9, 0.99)); their advice: an lr 3-10x "
    "smaller than AdamW's and a weight decay as much larger.",
)
