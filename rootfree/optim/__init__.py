"""rootfree's optimizers: root-free and root-based adaptive methods as plain torch optimizers."""

from rootfree.optim.base import PreconditionedOptimizer
from rootfree.optim.batch_size import BatchSizeCounter
from rootfree.optim.param_groups import lr_cov_param_groups, weight_decay_param_groups
from rootfree.optim.registry import OPTIMIZERS, OptimizerSpec, create_optimizer, get_optimizer_spec
from rootfree.optim.rootfree_adam import RootFreeAdam, rootfree_adam
from rootfree.optim.rootfree_rmsprop import RootFreeRMSProp, rootfree_rmsprop
from rootfree.optim.rootfree_shampoo import RootFreeShampoo
from rootfree.optim.shampoo import Shampoo
from rootfree.optim.vocabulary import (
    PAPER_HPARAMS,
    config_keys,
    from_paper_hparams,
    optimizer_arguments,
    to_paper_hparams,
)

__all__ = [
    "config_keys",
    "OPTIMIZERS",
    "PAPER_HPARAMS",
    "BatchSizeCounter",
    "OptimizerSpec",
    "PreconditionedOptimizer",
    "RootFreeAdam",
    "RootFreeRMSProp",
    "RootFreeShampoo",
    "Shampoo",
    "create_optimizer",
    "from_paper_hparams",
    "get_optimizer_spec",
    "lr_cov_param_groups",
    "optimizer_arguments",
    "rootfree_adam",
    "rootfree_rmsprop",
    "to_paper_hparams",
    "weight_decay_param_groups",
]
