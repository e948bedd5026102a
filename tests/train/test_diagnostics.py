"""Optimizer-state measurements: the frozen second moment (bf16 rounding keeps S at S_0 when
lr_cov is small), state memory, and the conditioning of Kronecker factors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rootfree.optim import RootFreeRMSProp, RootFreeShampoo, Shampoo
from rootfree.train.diagnostics import (
    factor_conditioning,
    optimizer_state_mib,
    second_moment_at_init,
)


@pytest.mark.parametrize("dtype,frozen", [("bfloat16", 0.5), ("float32", 0.0)])
def test_coordinates_whose_update_rounds_away_count_as_frozen(dtype, frozen):
    param = torch.nn.Parameter(torch.zeros(4))
    optimizer = RootFreeRMSProp([param], lr=0.1, lr_cov=1e-3, batch_size=128, state_dtype=dtype)
    param.grad = torch.tensor([0.0, 0.0, 1.0, 1.0])
    optimizer.step()
    # 1 * (1 - 1e-3) is within half a bf16 ulp of 1 (2^-8); + 1e-3 * 128 * 1 is not
    assert second_moment_at_init(optimizer) == {"second_moment_at_init": frozen}


def test_optimizers_without_a_second_moment_report_nothing():
    param = torch.nn.Parameter(torch.zeros(2))
    assert second_moment_at_init(torch.optim.SGD([param], lr=0.1)) == {}


@pytest.mark.parametrize("dtype,size", [("float32", 4), ("bfloat16", 2)])
def test_state_memory_counts_each_tensor_at_its_dtype(dtype, size):
    weight, bias = torch.nn.Parameter(torch.zeros(3, 5)), torch.nn.Parameter(torch.zeros(3))
    optimizer = RootFreeRMSProp(
        [weight, bias], lr=0.1, momentum=0.9, batch_size=8, state_dtype=dtype
    )
    assert optimizer_state_mib(optimizer) == {"optimizer_state_mib": 0.0}, "no state before a step"
    weight.grad, bias.grad = torch.ones(3, 5), torch.ones(3)
    optimizer.step()
    # a second moment and a momentum buffer per parameter: 2 x 18 numbers
    assert optimizer_state_mib(optimizer)["optimizer_state_mib"] * 2**20 == 2 * 18 * size


def test_shampoo_state_memory_holds_its_kronecker_factors():
    weight = torch.nn.Parameter(torch.zeros(3, 5))
    optimizer = Shampoo([weight], lr=0.1)
    weight.grad = torch.ones(3, 5)
    optimizer.step()
    counted = optimizer_state_mib(optimizer)["optimizer_state_mib"] * 2**20
    assert counted >= 2 * (3 * 3 + 5 * 5) * 4, "two fp32 factors and their inverse roots"


def test_factor_conditioning_reads_the_singular_values_of_each_factor():
    """K K^T's eigenvalues are K's squared singular values (numpy's SVD here), per factor."""
    weight, bias = torch.nn.Parameter(torch.zeros(3, 2)), torch.nn.Parameter(torch.zeros(5))
    optimizer = RootFreeShampoo([weight, bias], lr=0.1, batch_size=4)
    assert factor_conditioning(optimizer) == {}, "no factors before a step"
    weight.grad, bias.grad = torch.ones(3, 2), torch.ones(5)
    optimizer.step()
    generator = torch.Generator().manual_seed(0)
    factors = [optimizer.state[p]["factors"] for p in (weight, bias)]
    for group in factors:
        for i, k in enumerate(group):
            group[i] = torch.randn(k.shape, generator=generator)
    squared = [np.linalg.svd(k.numpy(), compute_uv=False) ** 2 for g in factors for k in g]
    measured = factor_conditioning(optimizer)
    assert measured["factor_cond_median"] == pytest.approx(
        np.median([s.max() / s.min() for s in squared]), rel=1e-6
    )
    assert measured["factor_eig_min_median"] == pytest.approx(
        np.median([s.min() for s in squared]), rel=1e-6
    )
    kept = optimizer.preconditioner_factors(max_dim=3)
    assert sorted(len(p) for p in kept) == [2, 3], "the 5-long axis is left out"
    assert factor_conditioning(torch.optim.SGD([weight], lr=0.1)) == {}
