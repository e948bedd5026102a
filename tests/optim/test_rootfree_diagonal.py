"""RF-RMSProp and RF-AdamW against re-derivations of the authors' update rules (docs/update_rules.md), and reductions."""

from __future__ import annotations

import pytest
import torch

from rootfree.optim import RootFreeAdam, RootFreeRMSProp
from tests.optim.helpers import run_on_gradients

SHAPES = [(5,), (4, 3), (3, 2, 4), (2, 3, 2, 2)]
STEPS = 6
B = 32


def gradient_sequence(shape, steps=STEPS, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    return [0.1 * torch.randn(shape, generator=generator, dtype=dtype) for _ in range(steps)]


def rf_rmsprop_reference(p, grads, lr, lr_cov, damping, momentum, weight_decay, batch_size):
    s = torch.ones_like(p)
    buf = torch.zeros_like(p)
    trajectory = []
    for g in grads:
        s = (1 - lr_cov) * s + lr_cov * batch_size * g**2
        d = g / (s + damping) + weight_decay * p
        buf = momentum * buf + d
        p = p - lr * buf
        trajectory.append(p)
    return trajectory


def rf_adamw_reference(p, grads, lr, betas, damping, weight_decay, batch_size, bias_correction):
    beta1, beta2 = betas
    m = torch.zeros_like(p)
    s = torch.ones_like(p)  # S_0 = B * v_0 with v_0 = 1/B
    trajectory = []
    for t, g in enumerate(grads, start=1):
        p = p * (1 - lr * weight_decay)
        m = beta1 * m + (1 - beta1) * g
        s = beta2 * s + (1 - beta2) * batch_size * g**2
        bc1 = 1 - beta1**t if bias_correction else 1.0
        bc2 = 1 - beta2**t if bias_correction else 1.0
        p = p - lr / bc1 * m / (s / bc2 + damping)
        trajectory.append(p)
    return trajectory


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("momentum,weight_decay", [(0.0, 0.0), (0.9, 1e-2)])
def test_rootfree_rmsprop_matches_formula(shape, foreach, momentum, weight_decay):
    hp = dict(lr=0.1, lr_cov=0.05, damping=1e-3, momentum=momentum, weight_decay=weight_decay)
    p0 = torch.randn(shape, dtype=torch.float64)
    grads = gradient_sequence(shape)
    got, _ = run_on_gradients(RootFreeRMSProp, p0, grads, batch_size=B, foreach=foreach, **hp)
    want = rf_rmsprop_reference(p0, grads, batch_size=B, **hp)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("bias_correction", [False, True])
def test_rootfree_adam_matches_formula(shape, foreach, bias_correction):
    hp = dict(lr=0.05, betas=(0.8, 0.9), damping=1e-3, weight_decay=1e-2)
    p0 = torch.randn(shape, dtype=torch.float64)
    grads = gradient_sequence(shape)
    got, _ = run_on_gradients(
        RootFreeAdam,
        p0,
        grads,
        batch_size=B,
        foreach=foreach,
        bias_correction=bias_correction,
        **hp,
    )
    want = rf_adamw_reference(p0, grads, batch_size=B, bias_correction=bias_correction, **hp)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-14)


def test_rootfree_rmsprop_with_vanishing_lr_cov_is_sgd_with_heavy_ball():
    """S stays at 1, so the step is heavy-ball SGD with learning rate lr / (1 + damping)."""
    lr, damping, momentum = 0.1, 0.25, 0.9
    p0 = torch.randn(4, 3, dtype=torch.float64)
    grads = gradient_sequence((4, 3), steps=10)
    got, _ = run_on_gradients(
        RootFreeRMSProp,
        p0,
        grads,
        lr=lr,
        lr_cov=1e-15,
        damping=damping,
        momentum=momentum,
        batch_size=B,
    )
    want, _ = run_on_gradients(torch.optim.SGD, p0, grads, lr=lr / (1 + damping), momentum=momentum)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("optimizer_cls", [RootFreeRMSProp, RootFreeAdam])
@pytest.mark.parametrize(
    "param_dtype,state_dtype",
    [
        (torch.float64, None),
        (torch.float32, None),
        (torch.float32, "bfloat16"),
        (torch.bfloat16, None),
    ],
)
def test_foreach_path_equals_for_loop_on_params_and_state(optimizer_cls, param_dtype, state_dtype):
    """PyTorch's pattern: mixed shapes, a 0-dim param, a step without grads, a frozen param."""
    shapes = [(3, 4), (), (5,), (2, 1, 3)]

    def run(foreach):
        torch.manual_seed(0)
        params = [torch.nn.Parameter(torch.randn(s, dtype=param_dtype)) for s in shapes]
        extra = dict(bias_correction=True) if optimizer_cls is RootFreeAdam else {}
        optimizer = optimizer_cls(
            params,
            lr=0.05,
            weight_decay=0.01,
            batch_size=B,
            foreach=foreach,
            state_dtype=state_dtype,
            **extra,
        )
        generator = torch.Generator().manual_seed(1)
        for i in range(6):
            for j, p in enumerate(params):
                frozen = i == 2 or (i in (3, 4) and j == 0)
                p.grad = (
                    None if frozen else torch.randn(p.shape, generator=generator).to(param_dtype)
                )
            optimizer.step()
        return params, optimizer

    loop_params, loop = run(False)
    each_params, each = run(True)
    for a, b in zip(loop_params, each_params):
        assert torch.equal(a, b)
    for a, b in zip(loop_params, each_params):
        for key, value in loop.state[a].items():
            other = each.state[b][key]
            assert torch.equal(value, other) if torch.is_tensor(value) else value == other


def test_bf16_second_moment_cannot_decay_for_small_lr_cov():
    """with bf16 state and lr_cov ~1e-3, S = 1 * (1 - lr_cov) rounds back to 1."""
    grads = [torch.full((64,), 1e-3) for _ in range(300)]
    results = {}
    for state_dtype in ("bfloat16", None):
        _, optimizer = run_on_gradients(
            RootFreeRMSProp,
            torch.zeros(64),
            grads,
            lr=0.0,
            lr_cov=1.2e-3,
            batch_size=B,
            state_dtype=state_dtype,
        )
        (state,) = optimizer.state.values()
        results[state_dtype] = state["second_moment"].float()
    assert torch.all(results["bfloat16"] == 1.0)
    expected = (1 - 1.2e-3) ** 300 + (1 - (1 - 1.2e-3) ** 300) * B * 1e-6
    torch.testing.assert_close(results[None], torch.full((64,), expected), rtol=1e-4, atol=0)


def test_state_dtype_sets_the_dtype_of_all_state():
    _, optimizer = run_on_gradients(
        RootFreeAdam,
        torch.zeros(3, 3),
        gradient_sequence((3, 3), dtype=torch.float32),
        batch_size=B,
        state_dtype=torch.bfloat16,
    )
    (state,) = optimizer.state.values()
    assert state["first_moment"].dtype == state["second_moment"].dtype == torch.bfloat16


@pytest.mark.parametrize("foreach", [False, True])
def test_functional_forms_match_the_formulas_on_plain_tensor_lists(foreach):
    """rootfree_rmsprop / rootfree_adam, called without any optimizer object, as torch's
    functional adamw() is: state lists updated in place, the formulas' trajectories."""
    from rootfree.optim import rootfree_adam, rootfree_rmsprop

    shapes = [(4, 3), (5,)]
    p0s = [torch.randn(shape, dtype=torch.float64) for shape in shapes]
    sequences = [gradient_sequence(shape, seed=i) for i, shape in enumerate(shapes)]
    rms = dict(lr=0.1, lr_cov=0.05, damping=1e-3, momentum=0.9, weight_decay=1e-2)
    adam = dict(lr=0.05, betas=(0.8, 0.9), damping=1e-3, weight_decay=1e-2)
    params_r, params_a = [p.clone() for p in p0s], [p.clone() for p in p0s]
    s_r = [torch.ones_like(p) for p in p0s]
    buffers = [torch.zeros_like(p) for p in p0s]
    m_a, s_a = [torch.zeros_like(p) for p in p0s], [torch.ones_like(p) for p in p0s]
    for t in range(STEPS):
        grads = [sequence[t] for sequence in sequences]
        rootfree_rmsprop(params_r, grads, s_r, buffers, foreach=foreach, batch_size=B, **rms)
        rootfree_adam(
            params_a,
            grads,
            m_a,
            s_a,
            [t + 1] * 2,
            foreach=foreach,
            batch_size=B,
            bias_correction=True,
            **adam,
        )
    for i, p0 in enumerate(p0s):
        want_r = rf_rmsprop_reference(p0, sequences[i], batch_size=B, **rms)[-1]
        want_a = rf_adamw_reference(p0, sequences[i], batch_size=B, bias_correction=True, **adam)
        torch.testing.assert_close(params_r[i], want_r, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(params_a[i], want_a[-1], rtol=1e-12, atol=1e-14)
