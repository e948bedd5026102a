"""Bad hyperparameters fail at construction with a ValueError that names the argument."""

from __future__ import annotations

import pytest
import torch

from rootfree.optim import RootFreeAdam, RootFreeRMSProp, RootFreeShampoo, Shampoo

REQUIRED = {
    RootFreeAdam: dict(batch_size=8),
    RootFreeRMSProp: dict(batch_size=8),
    RootFreeShampoo: dict(batch_size=8),
    Shampoo: {},
}

CASES = [
    # (optimizer, bad arguments, text the message must contain)
    *[(cls, dict(lr=-0.1), "learning rate: -0.1") for cls in REQUIRED],
    *[(cls, dict(weight_decay=-1.0), "weight_decay") for cls in REQUIRED],
    *[
        (cls, dict(batch_size=0), "batch_size")
        for cls in (RootFreeAdam, RootFreeRMSProp, RootFreeShampoo)
    ],
    *[(cls, dict(batch_size=2.5), "batch_size") for cls in (RootFreeRMSProp, RootFreeShampoo)],
    *[
        (cls, dict(lr_cov=v), "lr_cov")
        for cls in (RootFreeRMSProp, RootFreeShampoo)
        for v in (0.0, 1.5, -0.1)
    ],
    *[
        (cls, dict(damping=-1e-3), "damping")
        for cls in (RootFreeAdam, RootFreeRMSProp, RootFreeShampoo)
    ],
    *[
        (cls, dict(momentum=v), "momentum")
        for cls in (RootFreeRMSProp, RootFreeShampoo)
        for v in (1.0, -0.5)
    ],
    (RootFreeShampoo, dict(riemannian_momentum=1.0), "riemannian_momentum"),
    (RootFreeShampoo, dict(structure="blockdiagonal"), "structure"),
    (RootFreeShampoo, dict(preconditioner_dtype="float8"), "preconditioner_dtype"),
    (RootFreeShampoo, dict(update_every=0), "update_every"),
    (RootFreeShampoo, dict(update_schedule="cosine"), "update_schedule"),
    (RootFreeShampoo, dict(max_preconditioner_dim=0), "max_preconditioner_dim"),
    (RootFreeRMSProp, dict(state_dtype="int8"), "state_dtype"),
    (RootFreeAdam, dict(state_dtype="half-ish"), "state_dtype"),
    (RootFreeAdam, dict(betas=(1.0, 0.9)), "beta parameter at index 0"),
    (RootFreeAdam, dict(betas=(0.9, -0.1)), "beta parameter at index 1"),
    (Shampoo, dict(betas=(0.9, 1.0)), "beta parameter at index 1"),
    (Shampoo, dict(eps=-1.0), "eps"),
]


@pytest.mark.parametrize(
    "cls,bad,message",
    CASES,
    ids=[f"{c.__name__}-{next(iter(b))}={next(iter(b.values()))}" for c, b, _ in CASES],
)
def test_invalid_hyperparameter_is_named(cls, bad, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cls([torch.nn.Parameter(torch.zeros(2))], **{**REQUIRED[cls], **bad})


def test_invalid_choice_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"'blockdiagonal'; choose one of dense, diagonal, block<k>"
    ):
        RootFreeShampoo(
            [torch.nn.Parameter(torch.zeros(2))], batch_size=8, structure="blockdiagonal"
        )


@pytest.mark.parametrize("cls", [RootFreeAdam, RootFreeRMSProp, RootFreeShampoo])
def test_root_free_methods_require_the_batch_size(cls):
    with pytest.raises(TypeError, match="batch_size"):
        cls([torch.nn.Parameter(torch.zeros(2))])


def test_dtype_may_be_given_as_torch_dtype_and_is_stored_as_its_name():
    optimizer = RootFreeShampoo(
        [torch.nn.Parameter(torch.zeros(2))], batch_size=8, preconditioner_dtype=torch.bfloat16
    )
    assert optimizer.param_groups[0]["preconditioner_dtype"] == "bfloat16"


@pytest.mark.parametrize("cls", list(REQUIRED))
def test_sparse_gradients_are_rejected(cls):
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer = cls([param], **REQUIRED[cls])
    param.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        optimizer.step()
