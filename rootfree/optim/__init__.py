"""rootfree's optimizers: root-free and root-based adaptive methods as plain torch optimizers,
and the registry of every method's spec (rootfree's own and plug-ins')."""

from rootfree.optim.base import PreconditionedOptimizer
from rootfree.optim.batch_size import BatchSizeCounter
from rootfree.optim.param_groups import lr_cov_param_groups, weight_decay_param_groups
from rootfree.optim.registry import (
    OPTIMIZERS,
    PLUGIN_PROBLEMS,
    build_registry,
    create_optimizer,
    get_optimizer_spec,
    load_plugins,
    register_optimizer,
)
from rootfree.optim.rootfree_adam import RootFreeAdam, rootfree_adam
from rootfree.optim.rootfree_rmsprop import RootFreeRMSProp, rootfree_rmsprop
from rootfree.optim.rootfree_shampoo import RootFreeShampoo
from rootfree.optim.shampoo import Shampoo
from rootfree.optim.spec import FAMILIES, PAPER_HPARAMS, OptimizerSpec, PaperName, SearchRange
from rootfree.optim.vocabulary import (
    config_keys,
    from_paper_hparams,
    optimizer_arguments,
    searched_arguments,
    searched_only,
    to_paper_hparams,
)

__all__ = [
    "FAMILIES",
    "OPTIMIZERS",
    "PAPER_HPARAMS",
    "PLUGIN_PROBLEMS",
    "BatchSizeCounter",
    "OptimizerSpec",
    "PaperName",
    "PreconditionedOptimizer",
    "RootFreeAdam",
    "RootFreeRMSProp",
    "RootFreeShampoo",
    "SearchRange",
    "Shampoo",
    "config_keys",
    "create_optimizer",
    "from_paper_hparams",
    "get_optimizer_spec",
    "load_plugins",
    "lr_cov_param_groups",
    "optimizer_arguments",
    "register_optimizer",
    "rootfree_adam",
    "rootfree_rmsprop",
    "searched_arguments",
    "searched_only",
    "to_paper_hparams",
    "weight_decay_param_groups",
]

build_registry()
