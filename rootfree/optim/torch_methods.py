"""torch's own SGD, AdamW and RMSprop as rootfree methods: their specs only."""

from __future__ import annotations

import torch

from rootfree.optim.spec import ADAM_PAPER_NAMES, OptimizerSpec, PaperName, SearchRange

COMMON = {"lr": PaperName("lr"), "weight_decay": PaperName("weight_decay")}
MOMENTUM = SearchRange(0.1, 0.99)
# torch's adaptive methods share one wide stage-1 space (the study's P1 and P2 used it for both)
ADAPTIVE_SEARCH = {
    "lr": SearchRange(1e-5, 0.1),
    "momentum": MOMENTUM,
    "lr_cov": SearchRange(1e-4, 0.1),
    "damping": SearchRange(1e-12, 1e-6),
    "weight_decay": SearchRange(1e-4, 0.5),
}

SPECS = (
    OptimizerSpec(
        "sgd",
        torch.optim.SGD,
        family="sgd",
        heavy_ball={"momentum": "lr"},
        paper_names={**COMMON, "momentum": PaperName("momentum")},
        defaults={"lr": 0.05, "momentum": 0.9, "weight_decay": 5.0e-4},
        search={
            "lr": SearchRange(1e-3, 1.0),
            "momentum": MOMENTUM,
            "weight_decay": SearchRange(1e-5, 0.1),
        },
        bench={"lr": 0.05, "momentum": 0.9},
        description="torch SGD with heavy-ball momentum and coupled weight decay",
        notes="Paper stage-2 ranges (log-uniform; the authors' ResNet-34 sweep): lr 5e-4..0.5, "
        "momentum 0.1..0.99, weight_decay 1e-4..0.05.",
    ),
    OptimizerSpec(
        "adamw",
        torch.optim.AdamW,
        family="diagonal",
        bias_corrected=True,
        paper_names={**ADAM_PAPER_NAMES, "damping": PaperName("eps")},
        defaults={
            "lr": 1.0e-3,
            "momentum": 0.9,
            "lr_cov": 1.0e-3,
            "damping": 1.0e-8,
            "weight_decay": 0.05,
        },
        search=ADAPTIVE_SEARCH,
        bench={"lr": 2e-3},
        description="torch AdamW",
        notes="Paper stage-2 ranges (ResNet-34): lr 1e-4..8e-3, damping 1e-12..1e-6, "
        "lr_cov 5e-4..1e-2, momentum 0.1..0.99, weight_decay 5e-4..0.05.",
    ),
    OptimizerSpec(
        "rmsprop",
        torch.optim.RMSprop,
        family="diagonal",
        heavy_ball={"momentum": "lr"},
        paper_names={
            **COMMON,
            "momentum": PaperName("momentum"),
            "lr_cov": PaperName("alpha", complement=True),
            "damping": PaperName("eps"),
        },
        defaults={
            "lr": 1.0e-3,
            "momentum": 0.9,
            "lr_cov": 0.01,
            "damping": 1.0e-8,
            "weight_decay": 0.0,
        },
        search=ADAPTIVE_SEARCH,
        bench={"lr": 1e-3},
        description="torch RMSprop",
        notes="The paper names it as a baseline but no released script runs it, so there are "
        "no paper ranges to quote.",
    ),
)
