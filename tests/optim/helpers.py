"""Small models, batches and step loops shared by the optimizer tests."""

from __future__ import annotations

import torch
from torch import nn

BATCH = 8


def small_cnn(seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Module:
    """Conv + norm + linear with biases: 4-D, 2-D and 1-D parameters, and one size-1 axis."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.GroupNorm(2, 4),
        nn.Tanh(),
        nn.Conv2d(4, 1, 1),
        nn.Flatten(),
        nn.Linear(16, 5),
        nn.Tanh(),
        nn.Linear(5, 3),
    ).to(dtype)


def batches(n: int, seed: int = 1, dtype: torch.dtype = torch.float32):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, BATCH, 3, 6, 6, generator=generator, dtype=dtype)
    y = torch.randint(0, 3, (n, BATCH), generator=generator)
    return list(zip(x, y))


def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(model(x).float(), y)


def train(model: nn.Module, optimizer: torch.optim.Optimizer, data) -> list[float]:
    losses = []
    for x, y in data:
        optimizer.zero_grad()
        loss = loss_fn(model, x, y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def snapshot(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def run_on_gradients(optimizer_cls, p0: torch.Tensor, grads, **hparams):
    """Step a single parameter through given gradients; return its trajectory and the optimizer."""
    param = nn.Parameter(p0.clone())
    optimizer = optimizer_cls([param], **hparams)
    trajectory = []
    for g in grads:
        param.grad = g.clone()
        optimizer.step()
        trajectory.append(param.detach().clone())
    return trajectory, optimizer
