"""The fused (compiled) diagonal steps against the eager reference loop: round-off equal, and no
recompilation when the learning rate or the bias correction changes."""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.utils import counters

from rootfree.optim import RootFreeAdam, RootFreeRMSProp

CASES = [
    (RootFreeAdam, dict(betas=(0.9, 0.99), damping=1e-3, weight_decay=1e-2, bias_correction=True)),
    (RootFreeRMSProp, dict(lr_cov=0.05, damping=1e-3, momentum=0.9, weight_decay=1e-2)),
]


def run(cls, hparams, fused, steps=6):
    generator = torch.Generator().manual_seed(0)
    params = [
        torch.nn.Parameter(torch.randn(shape, generator=generator))
        for shape in [(7, 5), (5,), (3, 2, 4)]
    ]
    optimizer = cls(params, lr=0.1, batch_size=16, foreach=False, fused=fused, **hparams)
    for t in range(steps):
        for p in params:
            p.grad = 0.1 * torch.randn(p.shape, generator=generator)
        for group in optimizer.param_groups:
            group["lr"] = 0.1 / (t + 1)  # a schedule: must not recompile
        optimizer.step()
    return params, optimizer


@pytest.mark.parametrize("cls,hparams", CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_fused_step_equals_the_reference_without_recompiling(cls, hparams):
    want, reference = run(cls, hparams, fused=False)
    counters.clear()
    got, fused = run(cls, hparams, fused=True)
    assert counters["stats"]["unique_graphs"] == 1  # one compile for six steps at six lr
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-7)
        for key, value in reference.state[w].items():
            if torch.is_tensor(value):
                torch.testing.assert_close(fused.state[g][key], value, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("cls", [RootFreeAdam, RootFreeRMSProp])
def test_fused_and_foreach_together_are_refused(cls):
    with pytest.raises(ValueError, match="Invalid fused: True; foreach and fused cannot both"):
        cls([torch.nn.Parameter(torch.zeros(2))], batch_size=8, foreach=True, fused=True)
