"""The registry: names, errors, the paper's hyperparameter vocabulary, param groups, B counting."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rootfree.optim import (
    OPTIMIZERS,
    BatchSizeCounter,
    RootFreeAdam,
    create_optimizer,
    from_paper_hparams,
    optimizer_arguments,
    to_paper_hparams,
    weight_decay_param_groups,
)


def flat(arguments: dict) -> dict:
    """Tuple arguments as one key per entry (betas -> betas[0], betas[1]): pytest.approx compares
    flat mappings only (9.2 rejects nested ones)."""
    out = {}
    for key, value in arguments.items():
        if isinstance(value, tuple):
            out.update({f"{key}[{i}]": v for i, v in enumerate(value)})
        else:
            out[key] = value
    return out


def test_registry_holds_the_papers_methods_and_the_newer_family():
    paper = {"sgd", "adamw", "rmsprop", "shampoo", "rootfree_adam", "rootfree_rmsprop"}
    newer = {"singd", "muon", "soap", "kl_shampoo", "kl_soap", "psgd_kron"}
    assert {*paper, "rootfree_shampoo", *newer} <= set(OPTIMIZERS)
    assert OPTIMIZERS["rootfree_adam"].counterpart == "adamw"
    assert OPTIMIZERS["rootfree_rmsprop"].counterpart == "rmsprop"
    assert OPTIMIZERS["rootfree_shampoo"].counterpart == "shampoo"
    assert OPTIMIZERS["rootfree_shampoo"].family == OPTIMIZERS["shampoo"].family == "kronecker"
    assert OPTIMIZERS["muon"].family == "orthogonal"
    assert all(OPTIMIZERS[name].provider == "rootfree" for name in {*paper, *newer})


def test_unknown_optimizer_lists_the_choices():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adamx'; choose one of \['adamw'"):
        create_optimizer("adamx", nn.Linear(2, 2))


def test_unknown_hyperparameter_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"\['lr_covariance'\] for optimizer 'rootfree_rmsprop'; valid: "
    ):
        create_optimizer("rootfree_rmsprop", nn.Linear(2, 2), batch_size=4, lr_covariance=0.1)


def test_root_free_method_without_batch_size_is_an_error():
    with pytest.raises(ValueError, match="needs batch_size"):
        create_optimizer("rootfree_adam", nn.Linear(2, 2))


def test_batch_size_is_passed_only_where_it_means_something():
    model = nn.Linear(2, 2)
    assert (
        create_optimizer("rootfree_adam", model, batch_size=64).param_groups[0]["batch_size"] == 64
    )
    assert "batch_size" not in create_optimizer("adamw", model, batch_size=64).param_groups[0]


@pytest.mark.parametrize(
    "name,arguments,paper",
    [
        (
            "adamw",
            dict(lr=1e-3, betas=(0.8, 0.999), eps=1e-8, weight_decay=0.1),
            dict(lr=1e-3, momentum=0.8, lr_cov=0.001, damping=1e-8, weight_decay=0.1),
        ),
        (
            "rmsprop",
            dict(lr=1e-2, alpha=0.95, eps=1e-6, momentum=0.9, weight_decay=0.0),
            dict(lr=1e-2, momentum=0.9, lr_cov=0.05, damping=1e-6, weight_decay=0.0),
        ),
        (
            "shampoo",
            dict(lr=0.1, betas=(0.9, 0.99), eps=1e-10, weight_decay=1e-4),
            dict(lr=0.1, momentum=0.9, lr_cov=0.01, damping=1e-10, weight_decay=1e-4),
        ),
        (
            "rootfree_adam",
            dict(lr=1e-3, betas=(0.9, 0.98), damping=1e-4, weight_decay=0.05),
            dict(lr=1e-3, momentum=0.9, lr_cov=0.02, damping=1e-4, weight_decay=0.05),
        ),
        (
            "rootfree_rmsprop",
            dict(lr=0.1, lr_cov=1e-3, damping=1e-5, momentum=0.9, weight_decay=5e-4),
            dict(lr=0.1, momentum=0.9, lr_cov=1e-3, damping=1e-5, weight_decay=5e-4),
        ),
        (
            "rootfree_shampoo",
            dict(
                lr=0.1,
                lr_cov=0.05,
                damping=1e-4,
                momentum=0.9,
                weight_decay=5e-4,
                riemannian_momentum=0.5,
            ),
            dict(
                lr=0.1,
                momentum=0.9,
                lr_cov=0.05,
                damping=1e-4,
                weight_decay=5e-4,
                riemannian_momentum=0.5,
            ),
        ),
        (
            "sgd",
            dict(lr=0.1, momentum=0.9, weight_decay=5e-4),
            dict(lr=0.1, momentum=0.9, weight_decay=5e-4),
        ),
    ],
)
def test_paper_vocabulary_maps_both_ways(name, arguments, paper):
    assert to_paper_hparams(name, arguments) == pytest.approx(paper)
    assert flat(from_paper_hparams(name, **paper)) == pytest.approx(flat(arguments))


def test_paper_mapping_fills_tuple_defaults_and_rejects_unknown_names():
    assert from_paper_hparams("adamw", lr_cov=0.01) == {"betas": (0.9, 0.99)}
    with pytest.raises(ValueError, match="no paper hyperparameter \\['riemannian_momentum'\\]"):
        from_paper_hparams("adamw", riemannian_momentum=0.5)


def test_from_paper_hparams_builds_a_working_optimizer():
    model = nn.Linear(3, 2)
    kwargs = from_paper_hparams("adamw", lr=0.01, momentum=0.8, lr_cov=0.01, damping=1e-8)
    optimizer = create_optimizer("adamw", model, **kwargs)
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.99)
    assert optimizer.param_groups[0]["eps"] == 1e-8


class TinyViTLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 4, 3))
        self.proj = nn.Linear(3, 3)
        self.norm = nn.LayerNorm(3)

    def no_weight_decay(self):
        return {"pos_embed"}


def test_weight_decay_groups_skip_biases_norms_and_named_parameters():
    model = TinyViTLike()
    decay, no_decay = weight_decay_param_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert [p is model.proj.weight for p in decay["params"]] == [True]
    assert {id(p) for p in no_decay["params"]} == {
        id(model.pos_embed),
        id(model.proj.bias),
        id(model.norm.weight),
        id(model.norm.bias),
    }
    optimizer = create_optimizer("adamw", model, weight_decay=0.05, decay_1d=False)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.05, 0.0]


def test_batch_size_counter_sums_micro_batches_and_ignores_evaluation():
    model = nn.Linear(3, 1)
    optimizer = RootFreeAdam(model.parameters(), batch_size=1)
    counter = BatchSizeCounter(model, optimizer)
    for size in (4, 6):  # gradient accumulation over two micro-batches
        model(torch.randn(size, 3)).sum().backward()
    model.eval()
    model(torch.randn(100, 3))
    model.train()
    optimizer.step()
    assert optimizer.param_groups[0]["batch_size"] == 10
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    assert optimizer.param_groups[0]["batch_size"] == 5
    counter.remove()
    model(torch.randn(7, 3)).sum().backward()
    optimizer.step()
    assert optimizer.param_groups[0]["batch_size"] == 5


def test_batch_size_counter_refuses_optimizers_without_batch_size():
    model = nn.Linear(3, 1)
    with pytest.raises(ValueError, match="takes no batch_size"):
        BatchSizeCounter(model, torch.optim.SGD(model.parameters(), lr=0.1))


def test_config_settings_in_paper_names_become_constructor_arguments():
    settings = dict(lr=1e-3, momentum=0.8, lr_cov=0.01, damping=1e-9, weight_decay=0.1)
    assert flat(optimizer_arguments("adamw", settings)) == pytest.approx(
        flat(dict(lr=1e-3, betas=(0.8, 0.99), eps=1e-9, weight_decay=0.1))
    )
    shampoo = optimizer_arguments(
        "shampoo", dict(lr=0.1, lr_cov=0.001, update_every=2, grafting="adam")
    )
    assert flat(shampoo) == pytest.approx(
        flat(dict(lr=0.1, betas=(0.9, 0.999), update_every=2, grafting="adam"))
    )
    with pytest.raises(ValueError, match=r"\['eps'\] given both directly and in the paper's names"):
        optimizer_arguments("adamw", dict(damping=1e-8, eps=1e-8))


def _documented_arguments() -> dict[str, dict[str, str]]:
    """docs/hyperparameters.md's argument table: {optimizer: {paper name: cell}}."""
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "hyperparameters.md").read_text()
    text = text.split("<!-- generated: arguments -->")[1].split("<!-- end generated -->")[0]
    rows = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("| ")]
    header = next(row for row in rows if row[0].strip() == "optimizer")
    names = [cell.strip() for cell in header[1:]]
    table = {}
    for row in rows:
        if row[0].strip() in OPTIMIZERS:
            table[row[0].strip()] = {n: c.strip() for n, c in zip(names, row[1:]) if c.strip()}
    return table


def test_the_documented_hyperparameter_mapping_is_the_registrys():
    """Each documented cell names the argument a paper value lands in (and its complement)."""
    import re

    table = _documented_arguments()
    assert set(table) == set(OPTIMIZERS)
    for name, cells in table.items():
        assert set(cells) == set(OPTIMIZERS[name].paper_names), name
        for paper_name, cell in cells.items():
            argument, index = re.match(r"`(\w+)(?:\[(\d)\])?`", cell).groups()
            value = from_paper_hparams(name, **{paper_name: 0.25})[argument]
            value = value[int(index)] if index else value
            expected = 0.75 if "1 - lr_cov" in cell else 0.25
            assert value == pytest.approx(expected), (name, paper_name, cell)


def overridden_model():
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))


def test_param_overrides_set_settings_per_name_and_the_first_pattern_wins():
    model = overridden_model()
    optimizer = create_optimizer(
        "rootfree_shampoo",
        model,
        batch_size=8,
        lr=0.1,
        param_overrides={
            "2.weight": {"structure": "triltoeplitz", "lr": 0.5},
            "*.weight": {"lr": 0.2},
        },
    )
    by_param = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    settings = {n: (by_param[id(p)]["lr"], by_param[id(p)]["structure"]) for n, p in named.items()}
    assert settings == {
        "0.weight": (0.2, "dense"),
        "0.bias": (0.1, "dense"),
        "2.weight": (0.5, "triltoeplitz"),
        "2.bias": (0.1, "dense"),
    }
    model(torch.randn(5, 4)).sum().backward()
    optimizer.step()
    assert [f.shape for f in optimizer.state[named["2.weight"]]["factors"]] == [(3,), (6,)]
    assert [f.shape for f in optimizer.state[named["0.weight"]]["factors"]] == [(6, 6), (4, 4)]


@pytest.mark.parametrize(
    "overrides,target,message",
    [
        ({"*": {"lr_kov": 0.1}}, "model", r"Invalid param_overrides\['\*'\]: \{'lr_kov': 0.1\}"),
        ({"*": 0.1}, "model", r"Invalid param_overrides\['\*'\]: 0.1; give"),
        ({"*": {"structure": "blocks"}}, "model", "Invalid structure: 'blocks'; choose one of"),
        ({"*": {"lr": 0.1}}, "params", "param_overrides needs a model"),
    ],
)
def test_bad_param_overrides_are_named(overrides, target, message):
    model = overridden_model()
    target = model if target == "model" else model.parameters()
    with pytest.raises(ValueError, match=message):
        create_optimizer("rootfree_shampoo", target, batch_size=8, param_overrides=overrides)


def test_the_generated_tables_of_docs_hyperparameters_are_current():
    from rootfree import catalogue

    text = catalogue.DOC.read_text()
    assert catalogue.render(text) == text, "run `make docs` (python -m rootfree.catalogue)"
    assert text.count("<!-- generated: ") == len(catalogue.GENERATORS)
