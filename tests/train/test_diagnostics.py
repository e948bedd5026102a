"""The frozen-second-moment measurement: bf16 rounding keeps S at S_0 when lr_cov is small."""

from __future__ import annotations

import pytest
import torch

from rootfree.optim import RootFreeRMSProp
from rootfree.train.diagnostics import second_moment_at_init


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
