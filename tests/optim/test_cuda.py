"""GPU paths: CUDA steps (foreach by default there) track the CPU reference; no host syncs."""

from __future__ import annotations

import math

import pytest
import torch

from rootfree.optim import OPTIMIZERS, RootFreeShampoo, create_optimizer
from rootfree.optim.base import foreach_scale_
from tests.optim.helpers import BATCH, batches, small_cnn, train
from tests.optim.test_common import settings

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(autouse=True)
def exact_cuda_math():
    """No TF32, so CUDA and CPU differ by round-off only."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_cuda_trajectory_matches_cpu(name):
    data = batches(6)
    cpu_model = small_cnn()
    train(cpu_model, create_optimizer(name, cpu_model, batch_size=BATCH, **settings(name)), data)
    cuda_model = small_cnn().cuda()
    cuda_optimizer = create_optimizer(name, cuda_model, batch_size=BATCH, **settings(name))
    train(cuda_model, cuda_optimizer, [(x.cuda(), y.cuda()) for x, y in data])
    for a, b in zip(cpu_model.parameters(), cuda_model.parameters()):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["rootfree_adam", "rootfree_rmsprop", "rootfree_shampoo"])
def test_cuda_root_free_steps_make_no_host_sync(name):
    model = small_cnn().cuda()
    optimizer = create_optimizer(name, model, batch_size=BATCH, **settings(name))
    data = [(x.cuda(), y.cuda()) for x, y in batches(3)]
    for x, y in data:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            optimizer.step()
        finally:
            torch.cuda.set_sync_debug_mode("default")


def test_cuda_bf16_root_free_shampoo_trains():
    model = small_cnn().cuda()
    optimizer = RootFreeShampoo(
        model.parameters(),
        lr=0.02,
        lr_cov=0.1,
        batch_size=BATCH,
        update_every=2,
        preconditioner_dtype="bfloat16",
    )
    data = [(x.cuda(), y.cuda()) for x, y in batches(2)] * 20
    losses = train(model, optimizer, data)
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32, torch.float64])
def test_cuda_foreach_scale_matches_mul(dtype):
    tensors = [
        torch.rand(1000, device="cuda", dtype=dtype) + 1,
        torch.rand((), device="cuda").to(dtype),
    ]
    expected = [t.clone().mul_(0.99) for t in tensors]
    foreach_scale_(tensors, 0.99)
    for got, want in zip(tensors, expected):
        assert torch.equal(got, want)


@pytest.mark.parametrize("name", ["rootfree_adam", "rootfree_rmsprop"])
def test_cuda_fused_step_matches_cpu(name):
    """``fused=True`` compiles to Triton on CUDA; it must track the CPU reference loop."""
    data = batches(4)
    cpu_model = small_cnn()
    train(cpu_model, create_optimizer(name, cpu_model, batch_size=BATCH, **settings(name)), data)
    cuda_model = small_cnn().cuda()
    fused = create_optimizer(name, cuda_model, batch_size=BATCH, fused=True, **settings(name))
    train(cuda_model, fused, [(x.cuda(), y.cuda()) for x, y in data])
    for a, b in zip(cpu_model.parameters(), cuda_model.parameters()):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-4, atol=1e-5)
