"""Lion against its formula, written out independently in NumPy (float64)."""

import numpy as np
import torch
from rootfree_lion import Lion


def reference(p, grads, lr, beta1, beta2, weight_decay):
    m = np.zeros_like(p)
    for g in grads:
        c = beta1 * m + (1 - beta1) * g
        p = p * (1 - lr * weight_decay) - lr * np.sign(c)
        m = beta2 * m + (1 - beta2) * g
    return p


def test_lion_follows_its_formula_for_twenty_steps():
    generator = np.random.default_rng(0)
    p0 = generator.standard_normal((4, 3))
    grads = [generator.standard_normal((4, 3)) for _ in range(20)]
    param = torch.nn.Parameter(torch.tensor(p0))
    optimizer = Lion([param], lr=0.01, betas=(0.8, 0.95), weight_decay=0.1)
    for g in grads:
        param.grad = torch.tensor(g)
        optimizer.step()
    expected = reference(p0, grads, 0.01, 0.8, 0.95, 0.1)
    np.testing.assert_allclose(param.detach().numpy(), expected, rtol=1e-12, atol=1e-12)
