"""The frozen-second-moment measurement: bf16 rounding keeps S at S_0 when lr_cov is small."""

from __future__ import annotations

import pytest
import torch

from rootfree.optim import RootFreeRMSProp, Shampoo
from rootfree.train.diagnostics import optimizer_state_mib, second_moment_at_init


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
