"""P6, affine invariance: train a model and a copy whose first layer is stored rescaled
(W = W' / a), and measure how far the copy's trajectory is from the mapped original (W' = a W).

A root-free step g / S is invariant when S starts consistently (S'_0 = S_0 / a^2) and the damping
is 0: g' = g / a and S' = S / a^2 give a step a times the original. Adam's g / sqrt(v) and SGD's
g are not. Everything runs in float64 on CPU, so the table regenerates byte for byte.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from rootfree.optim import RootFreeRMSProp

SCALES = (0.1, 10.0)
STEPS = 50


class Rescaled(nn.Module):
    """An MLP whose first weight is stored as ``scale * W`` and used as ``W``."""

    def __init__(self, first: nn.Linear, rest: nn.Module, scale: float) -> None:
        super().__init__()
        self.stored = nn.Parameter(first.weight.detach() * scale)
        self.bias = nn.Parameter(first.bias.detach().clone())
        self.rest, self.scale = rest, scale

    def effective(self) -> torch.Tensor:
        return self.stored / self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rest(torch.tanh(F.linear(x, self.effective(), self.bias)))


def _problem(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(64, 8, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 3, (64,), generator=generator)
    first = nn.Linear(8, 16).double()
    rest = nn.Linear(16, 3).double()
    with torch.no_grad():
        for tensor in (first.weight, first.bias, rest.weight, rest.bias):
            tensor.copy_(torch.randn(tensor.shape, generator=generator, dtype=torch.float64) * 0.5)
    return inputs, labels, first, rest


OPTIMIZERS = {
    "RF-RMSProp, damping 0, S0 consistent": lambda groups, a: RootFreeRMSProp(
        [{**groups[0], "second_moment_init": 1.0 / a**2}, groups[1]],
        lr=1e-3,
        lr_cov=0.05,
        damping=0.0,
        momentum=0.9,
        weight_decay=1e-3,
        batch_size=64,
    ),
    "RF-RMSProp, damping 0, S0 = 1": lambda groups, a: RootFreeRMSProp(
        groups, lr=1e-3, lr_cov=0.05, damping=0.0, momentum=0.9, batch_size=64
    ),
    "RF-RMSProp, damping 1e-4, S0 = 1": lambda groups, a: RootFreeRMSProp(
        groups, lr=1e-3, lr_cov=0.05, damping=1e-4, momentum=0.9, batch_size=64
    ),
    "Adam": lambda groups, a: torch.optim.Adam(groups, lr=1e-3, eps=1e-8),
    "SGD": lambda groups, a: torch.optim.SGD(groups, lr=1e-2, momentum=0.9),
}


def trajectory(name: str, scale: float) -> list[torch.Tensor]:
    """The effective first-layer weight after each step of ``name`` with the layer stored at
    ``scale`` (scale 1 is the original parameterisation)."""
    inputs, labels, first, rest = _problem()
    model = Rescaled(first, rest, scale)
    groups = [{"params": [model.stored]}, {"params": [model.bias, *model.rest.parameters()]}]
    optimizer = OPTIMIZERS[name](groups, scale)
    path = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        F.cross_entropy(model(inputs), labels).backward()
        optimizer.step()
        path.append(model.effective().detach().clone())
    return path


ROUND_OFF = 1e-9  # float64 round-off over 50 steps stays orders of magnitude below this


def _shown(gap: float) -> str:
    """Three digits, or the round-off bound: the last bits differ between CPUs' BLAS kernels."""
    return f"< {ROUND_OFF:g}" if gap < ROUND_OFF else f"{gap:.3g}"


def invariance_table() -> pd.DataFrame:
    """Per optimizer and scale: max over steps of |W'_t / a - W_t| / |W_t - W_0|."""
    rows = []
    for name in OPTIMIZERS:
        original = trajectory(name, 1.0)
        start = _problem()[2].weight.detach()
        for scale in SCALES:
            mapped = trajectory(name, scale)
            gap = max(float((m - o).norm() / (o - start).norm()) for m, o in zip(mapped, original))
            rows.append(
                {
                    "optimizer": name,
                    "scale": scale,
                    "relative_deviation": _shown(gap),
                    "invariant": gap < ROUND_OFF,
                }
            )
    return pd.DataFrame(rows)
