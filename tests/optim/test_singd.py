"""SINGD against the authors' singd 0.0.5 (float64, parameters and K K^T, C C^T to 1e-10), its
hooks' edge cases (accumulation, AMP scale, frozen weights, lifetime) and its registration."""

from __future__ import annotations

import copy
import gc
import importlib

import pytest
import torch
from torch import nn

from rootfree.optim import create_optimizer, from_paper_hparams, get_optimizer_spec
from rootfree.optim.singd import SINGD, layer_structures, singd_reference
from tests.optim.test_rootfree_shampoo import transpose_singd_blocks
from tests.scripts.test_benchmarks import load

pytest.importorskip("singd")
pytestmark = [
    pytest.mark.filterwarnings("ignore:Found un-supported parameter"),  # singd, on the norm
    pytest.mark.filterwarnings("ignore:Calling naive implementation"),  # singd's Toeplitz
]

TOLERANCE = 1e-10
HPARAMS = dict(
    lr=0.01,
    momentum=0.9,
    lr_cov=0.1,
    riemannian_momentum=0.5,
    damping=1e-2,
    weight_decay=1e-3,
    update_every=2,
)
STRUCTURED = ("hierarchical", "triltoeplitz", "triutoeplitz", "blockdiagonal")


@pytest.fixture(autouse=True)
def singd_in_float64(monkeypatch):
    """singd 0.0.5's structured matrices pick a compute dtype among fp16, bf16 and fp32 only
    (``lowest_precision``) and refuse float64; this ranks float64 above them, nothing else."""
    order = [torch.float16, torch.bfloat16, torch.float32, torch.float64]

    def lowest(*dtypes):
        return order[min(order.index(d) for d in dtypes)]

    for name in STRUCTURED:
        monkeypatch.setattr(
            importlib.import_module(f"singd.structures.{name}"), "lowest_precision", lowest
        )


def mlp() -> nn.Module:
    """Sides 10 to 41: 30-blocks with a remainder and 15_15 hierarchies with all five parts."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(33, 40), nn.Tanh(), nn.Linear(40, 10)).double()


def cnn() -> nn.Module:
    """Convs with and without bias, padding, stride, channel groups and an in-place activation on
    the output, a norm, and a linear head."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.Tanh(),
        nn.Conv2d(8, 6, 3, stride=2, groups=2, bias=False),
        nn.ReLU(inplace=True),  # modifies the conv's output, which the hook is on
        nn.Flatten(),
        nn.Linear(54, 5),
    ).double()


def sequence_model() -> nn.Module:
    """Linear layers on (batch, tokens, features): shared axes for expand and reduce."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double()


MODELS = {
    "mlp": (mlp, (33,), 10),
    "cnn": (cnn, (3, 8, 8), 5),
    "sequence": (sequence_model, (4, 6), 3),
}


def batches(name: str, n: int, batch: int = 16, seed: int = 1):
    """``n`` batches of inputs and labels for ``MODELS[name]``."""
    _, shape, classes = MODELS[name]
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, batch, *shape, generator=generator, dtype=torch.float64)
    labels = shape[:-1] if name == "sequence" else ()
    y = torch.randint(0, classes, (n, batch, *labels), generator=generator)
    return list(zip(x, y))


def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, reduction="mean"):
    """Cross-entropy over every sample (and token)."""
    logits = model(x)
    return nn.functional.cross_entropy(logits.flatten(0, -2), y.flatten(), reduction=reduction)


def train_step(model, optimizers, x, y, reduction="mean", micro=1):
    """One step of every optimizer on ``micro`` equal micro-batches (losses divided by it)."""
    for optimizer in optimizers:
        optimizer.zero_grad()
    for xs, ys in zip(x.chunk(micro), y.chunk(micro)):
        (loss_fn(model, xs, ys, reduction) / micro).backward()
    for optimizer in optimizers:
        optimizer.step()


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b||."""
    return ((a - b).norm() / b.norm()).item()


def factor_products(ours, theirs, ours_model, theirs_model, structure):
    """(ours, theirs) K K^T and C C^T of every layer singd trains."""
    pairs = []
    modules = dict(ours_model.named_modules())
    for name in theirs.Ks:
        module = modules[name]
        state = ours.state[module.weight]
        structs = layer_structures(structure, module.weight, module.bias is not None)
        for struct, factor, authors in zip(
            structs, (state["K"], state["C"]), (theirs.Ks[name], theirs.Cs[name])
        ):
            dense, other = struct.to_dense(factor[None])[0], authors.to_dense()
            pairs.append((dense @ dense.T, other @ other.T))
    return pairs


def compare(model_name, steps=24, structure="dense", reduction="mean", others_adamw=False, **hp):
    """Train ours and singd (plus torch AdamW on the rest, for ``others_adamw``) side by side;
    return the largest relative parameter gap over all steps, the last K K^T / C C^T gaps,
    and how far the factors moved from I."""
    build = MODELS[model_name][0]
    ours_model, theirs_model = build(), build()
    settings = {**HPARAMS, "structure": structure, **hp}
    ours = SINGD(ours_model.parameters(), others="adamw" if others_adamw else "none", **settings)
    theirs = [singd_reference(theirs_model, **settings)]
    if others_adamw:
        other = [p for n, p in theirs_model.named_parameters() if n.startswith("1.")]
        theirs.append(
            torch.optim.AdamW(other, lr=settings["lr"], weight_decay=settings["weight_decay"])
        )
    worst = 0.0
    for x, y in batches(model_name, steps):
        train_step(ours_model, [ours], x, y, reduction)
        train_step(theirs_model, theirs, x, y, reduction)
        gaps = [relative(a, b) for a, b in zip(ours_model.parameters(), theirs_model.parameters())]
        worst = max(worst, *gaps)
    pairs = factor_products(ours, theirs[0], ours_model, theirs_model, settings["structure"])
    moved = min((b - torch.eye(len(b), dtype=b.dtype)).norm().item() for _, b in pairs)
    return worst, max(relative(a, b) for a, b in pairs), moved, ours_model


@pytest.mark.parametrize("structure", ["dense", "hierarchical15_15"])
@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
def test_matches_authors_singd(model_name, structure):
    """24 steps, T = 2, Riemannian and heavy-ball momentum, weight decay; the CNN's norm is left
    alone by both (others='none' is singd's behaviour)."""
    params, factors, moved, model = compare(model_name, structure=structure)
    assert params < TOLERANCE and factors < TOLERANCE
    assert moved > 1.0, "the preconditioner must move well away from I for the test to bite"
    if model_name == "cnn":
        norm = model[1]
        assert torch.equal(norm.weight, torch.ones_like(norm.weight))
        assert torch.equal(norm.bias, torch.zeros_like(norm.bias))


@pytest.mark.slow
@pytest.mark.parametrize(
    "structure", ["diagonal", "block30diagonal", "triltoeplitz", "triutoeplitz"]
)
@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
def test_matches_authors_singd_on_every_structure(model_name, structure, monkeypatch):
    """singd's other structures; block-diagonal with singd's transposes corrected
    (docs/structures.md: singd 0.0.5 applies K where K^T is meant)."""
    if structure.startswith("block"):
        transpose_singd_blocks(monkeypatch)
    params, factors, moved, _ = compare(model_name, structure=structure)
    assert params < TOLERANCE and factors < TOLERANCE and moved > 1.0


@pytest.mark.parametrize(
    "model_name,options",
    [
        ("cnn", dict(kfac_approx="reduce")),
        ("sequence", dict(loss_average="batch+sequence")),
        ("sequence", dict(loss_average="batch+sequence", kfac_approx="reduce")),
        ("mlp", dict(loss_average=None, reduction="sum", lr=1e-3)),
        ("mlp", dict(kfac_like=True, riemannian_momentum=0.0)),
        ("cnn", dict(normalize_lr_cov=True, lr_cov=0.3, damping=10.0)),  # max|m| > 1: it acts
        ("mlp", dict(riemannian_momentum=0.0, momentum=0.0, update_every=1)),
    ],
)
def test_options_match_authors_singd(model_name, options):
    """KFAC-reduce, per-token losses, a summed loss, IKFAC, normalised lr_cov, no momenta."""
    params, factors, moved, _ = compare(model_name, steps=20, **options)
    assert params < TOLERANCE and factors < TOLERANCE and moved > 0.5


def test_others_get_the_authors_adamw():
    """The norm's parameters take torch AdamW at SINGD's lr and weight decay, the pairing of
    singd's examples; the convs and the head match singd."""
    params, factors, _, model = compare("cnn", others_adamw=True)
    assert params < TOLERANCE and factors < TOLERANCE
    assert not torch.equal(model[1].weight, torch.ones_like(model[1].weight))


def test_equal_micro_batches_give_the_full_batch_step():
    """Accumulating two half batches (each loss halved) moves as one batch does: singd scales
    A and G by each pass's own batch, and the trace-weighted products cancel the difference."""
    whole, halves = mlp(), mlp()
    optimizers = [SINGD(m.parameters(), **HPARAMS) for m in (whole, halves)]
    for x, y in batches("mlp", 20):
        train_step(whole, optimizers[:1], x, y)
        train_step(halves, optimizers[1:], x, y, micro=2)
    for a, b in zip(halves.parameters(), whole.parameters()):
        assert relative(a, b) < TOLERANCE


def test_amp_scale_is_taken_from_the_grad_scaler():
    """Gradients scaled by S with a GradScaler's grad_scale/found_inf step as unscaled ones do;
    found infs skip the step; gradients unscaled before step() are refused."""
    plain, scaled = mlp(), mlp()
    ours = [SINGD(m.parameters(), **HPARAMS) for m in (plain, scaled)]
    for x, y in batches("mlp", 6):
        train_step(plain, ours[:1], x, y)
        ours[1].zero_grad()
        (loss_fn(scaled, x, y) * 1024.0).backward()
        ours[1].grad_scale, ours[1].found_inf = torch.tensor(1024.0), torch.tensor(0.0)
        ours[1].step()
    for a, b in zip(scaled.parameters(), plain.parameters()):
        assert relative(a, b) < TOLERANCE
    before = [p.clone() for p in scaled.parameters()]
    ours[1].found_inf = torch.tensor(1.0)
    ours[1].step()
    assert all(torch.equal(p, q) for p, q in zip(scaled.parameters(), before))
    ours[1].grad_scale = None
    with pytest.raises(RuntimeError, match="unscaled before"):
        ours[1].step()


def test_a_layer_with_frozen_weight_gives_its_bias_to_others():
    """A layer whose weight has no gradient keeps no factors; its bias is stepped by AdamW."""
    model = mlp()
    optimizer = SINGD(model.parameters(), **HPARAMS)
    model[2].weight.requires_grad_(False)
    weight, bias = model[2].weight.clone(), model[2].bias.clone()
    for x, y in batches("mlp", 3):
        train_step(model, [optimizer], x, y)
    assert torch.equal(model[2].weight, weight) and model[2].weight not in optimizer.state
    assert set(optimizer.state[model[2].bias]) == {"adamw_step", "exp_avg", "exp_avg_sq"}
    assert not torch.equal(model[2].bias, bias)
    assert {"K", "C", "step"} <= set(optimizer.state[model[0].weight])


def test_the_global_hook_goes_with_the_optimizer():
    """The forward hook holds the optimizer weakly and is removed when it is freed; a deep
    copy hooks its own parameters, load_state_dict adds no hook."""
    hooks = torch.nn.modules.module._global_forward_hooks
    before = set(hooks)
    optimizer = SINGD(mlp().parameters())
    optimizer.load_state_dict(optimizer.state_dict())
    assert len(set(hooks) - before) == 1
    duplicate = copy.deepcopy(optimizer)
    ours = set(hooks) - before
    assert len(ours) == 2
    del optimizer, duplicate
    gc.collect()
    assert not ours & set(hooks)


def test_state_survives_a_weights_only_checkpoint_bitwise(tmp_path):
    """K, C, their momenta, step and buffers are plain tensors and ints in ``state``."""
    data = batches("cnn", 7)
    model = cnn()
    optimizer = SINGD(model.parameters(), **HPARAMS)
    for x, y in data:
        train_step(model, [optimizer], x, y)
    expected = [p.clone() for p in model.parameters()]

    model = cnn()
    optimizer = SINGD(model.parameters(), **HPARAMS)
    for x, y in data[:3]:
        train_step(model, [optimizer], x, y)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, tmp_path / "c")
    checkpoint = torch.load(tmp_path / "c", weights_only=True)
    resumed = cnn()
    resumed.load_state_dict(checkpoint["model"])
    optimizer = SINGD(resumed.parameters(), **HPARAMS)
    optimizer.load_state_dict(checkpoint["optimizer"])
    for x, y in data[3:]:
        train_step(resumed, [optimizer], x, y)
    assert all(torch.equal(a, b) for a, b in zip(resumed.parameters(), expected))


# Per model, by hand: sum over layers of d_K^2 + d_C^2 (d_K: inputs, + 1 for a bias), and the
# layers' parameter count; the sequence model's Linear layers keep nothing per token.
STATE_SIZES = {
    "cnn": ((28**2 + 8**2) + (36**2 + 6**2) + (55**2 + 5**2), (8 * 27 + 8) + 6 * 36 + (5 * 54 + 5)),
    "sequence": ((7**2 + 8**2) + (9**2 + 3**2), (6 * 8 + 8) + (8 * 3 + 3)),
}


@pytest.mark.parametrize("model_name", sorted(STATE_SIZES))
def test_state_is_the_factors_their_momenta_and_the_buffers(model_name):
    """Between steps, ours and singd each keep K, C, m_K, m_C per layer and a heavy-ball buffer
    per parameter (float64), nothing more; the bench's state_bytes counts singd's (outside
    ``state``) too."""
    factors, parameters = STATE_SIZES[model_name]
    expected = 8 * (2 * factors + parameters)
    state_bytes = load("bench_optimizers").state_bytes
    build = MODELS[model_name][0]
    ours_model, theirs_model = build(), build()
    ours = SINGD(ours_model.parameters(), others="none", **HPARAMS)
    theirs = singd_reference(theirs_model, **HPARAMS)
    for x, y in batches(model_name, 3):  # a refresh, a plain step, a refresh
        train_step(ours_model, [ours], x, y)
        train_step(theirs_model, [theirs], x, y)
        assert state_bytes(ours) == state_bytes(theirs) == expected


def test_create_optimizer_builds_singd_from_a_model():
    """The registry's factory, in the paper's vocabulary, per-name overrides included."""
    spec = get_optimizer_spec("singd")
    assert (spec.family, spec.root_free, spec.counterpart) == ("kronecker", True, None)
    arguments = from_paper_hparams("singd", lr=0.01, lr_cov=0.05, riemannian_momentum=0.25)
    assert arguments == dict(lr=0.01, lr_cov=0.05, riemannian_momentum=0.25)
    model = cnn().float()
    optimizer = create_optimizer(
        "singd",
        model,
        **arguments,
        update_every=1,
        param_overrides={"6.weight": {"structure": "diagonal"}},
    )
    data = [(x.float(), y) for x, y in batches("cnn", 1)] * 15
    losses = []
    for x, y in data:
        train_step(model, [optimizer], x, y)
        losses.append(loss_fn(model, x, y).item())
    assert losses[-1] < 0.7 * losses[0]
    assert optimizer.state[model[6].weight]["K"].shape == (55,)
    assert optimizer.state[model[0].weight]["K"].shape == (28, 28)
    assert len(optimizer.preconditioner_factors()) == 6


def test_bf16_factors_train():
    """K and C in bf16 (fp32 weights): finite, and the loss falls."""
    model = cnn().float()
    optimizer = SINGD(model.parameters(), **{**HPARAMS, "preconditioner_dtype": "bfloat16"})
    data = [(x.float(), y) for x, y in batches("cnn", 2)] * 10
    losses = []
    for x, y in data:
        train_step(model, [optimizer], x, y)
        losses.append(loss_fn(model, x, y).item())
    assert optimizer.state[model[0].weight]["K"].dtype == torch.bfloat16
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < 0.7 * losses[0]


def _ddp_worker(rank: int, world: int, folder: str) -> None:
    """One rank of ``test_ddp_ranks_agree_with_one_process``: its share of every batch."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    init = f"file://{folder}/init"
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    model = mlp()
    forward = DistributedDataParallel(model)
    optimizer = SINGD(model.parameters(), **HPARAMS)
    for x, y in batches("mlp", 10):
        optimizer.zero_grad()
        loss_fn(forward, x.chunk(world)[rank], y.chunk(world)[rank]).backward()
        optimizer.step()
    torch.save([p.detach() for p in model.parameters()], f"{folder}/rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_ranks_agree_with_one_process(tmp_path):
    """Under DDP (gloo, 2 ranks) H_K and H_C are averaged over ranks, as singd does: the ranks
    stay equal and match one process on the whole batch."""
    torch.multiprocessing.spawn(_ddp_worker, args=(2, str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    model = mlp()
    optimizer = SINGD(model.parameters(), **HPARAMS)
    for x, y in batches("mlp", 10):
        train_step(model, [optimizer], x, y)
    for a, b, want in zip(*ranks, model.parameters()):
        assert torch.equal(a, b) and relative(a, want) < TOLERANCE


def test_reference_refuses_what_singd_lacks():
    """The bench's reference builds singd alone, with nothing it cannot express."""
    with pytest.raises(ValueError, match="others='none'"):
        singd_reference(mlp(), others="adamw")
    with pytest.raises(ValueError, match=r"no counterpart of \['foreach'\]"):
        singd_reference(mlp(), foreach=True)


def test_invalid_settings_are_named():
    """Bad settings fail at construction with the value and the choices."""
    params = mlp().parameters()
    with pytest.raises(ValueError, match="Invalid kfac_approx: 'mean'"):
        SINGD(params, kfac_approx="mean")
    with pytest.raises(ValueError, match="Invalid structure: 'blocks'"):
        SINGD(mlp().parameters(), structure=("dense", "blocks"))
    with pytest.raises(ValueError, match="Invalid others: 'sgd'"):
        SINGD(mlp().parameters(), others="sgd")
    copy.deepcopy(SINGD(mlp().parameters()))
