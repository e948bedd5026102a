"""Per-step cost of every registered optimizer (plug-ins included), as ratios to torch AdamW and
to each method's installable reference (its spec's ``reference``), measured in the same run.

For each model every optimizer starts from the same weights and steps repeatedly on one fixed
set of gradients, and ``step()`` alone is timed (median; mean for amortized refresh costs). A
method beside its reference is timed interleaved with it, step for step, and its ratio of means
comes with a paired bootstrap 95% interval (vs_baseline_low/high). A method whose curvature
comes from hooks is timed as forward, backward and step, less a plain forward and backward timed
in the same round. Also reported: bytes of optimizer state and, on CUDA, the step's transient peak.

    python scripts/bench_optimizers.py                      # CPU, ResNet-18 and a small ViT
    python scripts/bench_optimizers.py --device cuda --batch 256
    python scripts/bench_optimizers.py --only adamw,rootfree_shampoo --models resnet18

Writes results/bench/<device>_<model>.csv and .md. Machines stall now and then: compare rows of
one run, and rerun when fwd+bwd looks off.
"""

from __future__ import annotations

import argparse
import copy
import math
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import scipy.stats
import timm
import torch

from rootfree.optim import (
    OPTIMIZERS,
    RootFreeAdam,
    RootFreeRMSProp,
    RootFreeShampoo,
    Shampoo,
    create_optimizer,
)

LR = 1e-4  # small: params barely move over the repeated steps on fixed gradients


@dataclass(frozen=True)
class BenchConfig:
    label: str
    build: Callable[[torch.nn.Module, int], torch.optim.Optimizer]
    baseline: str | None = None  # label of the config this one is compared with, if any
    with_backward: bool = False  # timed as forward, backward and step, less forward and backward


def _sirfshampoo(T: int, dtype: torch.dtype | None, structure: str = "dense") -> Callable:
    def build(model, batch):
        from sirfshampoo import SIRFShampoo  # the authors' package, a dev dependency

        extra = {} if structure == "dense" else {"structures": structure}
        return SIRFShampoo(
            model, lr=LR, T=T, batch_size=batch, preconditioner_dtypes=dtype, **extra
        )

    return build


def _rootfree_shampoo(T: int, dtype: torch.dtype | None, structure: str = "dense") -> Callable:
    def build(model, batch):
        return RootFreeShampoo(
            model.parameters(),
            lr=LR,
            batch_size=batch,
            update_every=T,
            preconditioner_dtype=dtype,
            structure=structure,
        )

    return build


# the structures sirfshampoo's main branch offers; an installed 0.0.1 has dense alone (skipped)
STRUCTURES = ("diagonal", "block30diagonal", "hierarchical15_15", "triltoeplitz")


def registered() -> list[BenchConfig]:
    """Every registered optimizer (plug-ins included) with its spec's bench settings at lr LR,
    beside its authors' installable optimizer where the spec names one (``<name>_reference``)."""
    out = []
    for spec in OPTIMIZERS.values():
        settings = {**spec.bench, "lr": LR}

        def build(model, batch, name=spec.name, settings=settings):
            return create_optimizer(name, model, batch_size=batch, **settings)

        label, hooks = f"{spec.name}_reference", spec.curvature_from_backward
        baseline = label if spec.reference else None
        out.append(BenchConfig(spec.name, build, baseline=baseline, with_backward=hooks))
        if spec.reference is not None:

            def reference(model, batch, spec=spec, settings=settings):
                extra = {"batch_size": batch} if spec.takes_batch_size else {}
                return spec.reference(model, **settings, **extra)

            out.append(BenchConfig(label, reference, with_backward=hooks))
    return out


def variants() -> list[BenchConfig]:
    """Implementation variants of rootfree's own methods: loops, foreach, fused, bf16 state,
    refresh periods and factor structures, each against torch's or the authors' code."""
    params = lambda m: m.parameters()  # noqa: E731
    out = [
        BenchConfig(
            "adamw_foreach", lambda m, b: torch.optim.AdamW(params(m), lr=LR, foreach=True)
        ),
        BenchConfig("adamw_fused", lambda m, b: torch.optim.AdamW(params(m), lr=LR, fused=True)),
    ]
    for cls, name in ((RootFreeAdam, "rootfree_adam"), (RootFreeRMSProp, "rootfree_rmsprop")):
        for suffix, kwargs in (
            ("_loop", dict(foreach=False)),
            ("_foreach", dict(foreach=True)),
            ("_bf16", dict(foreach=True, state_dtype="bfloat16")),
            ("_fused", dict(fused=True)),  # compiled during the warm-up steps
        ):
            out.append(
                BenchConfig(
                    name + suffix,
                    lambda m, b, cls=cls, kwargs=kwargs: cls(
                        params(m), lr=LR, batch_size=b, **kwargs
                    ),
                )
            )
    for T in (1, 2, 10):  # 2: the paper's
        out.append(
            BenchConfig(
                f"shampoo_T{T}",
                lambda m, b, T=T: Shampoo(params(m), lr=LR, update_every=T, grafting="adam"),
            )
        )
        for dtype, suffix in ((None, ""), (torch.bfloat16, "_bf16")):
            if T != 1 and dtype is not None:
                continue
            out.append(BenchConfig(f"sirfshampoo_T{T}{suffix}", _sirfshampoo(T, dtype)))
            out.append(
                BenchConfig(
                    f"rootfree_shampoo_T{T}{suffix}",
                    _rootfree_shampoo(T, dtype),
                    baseline=f"sirfshampoo_T{T}{suffix}",
                )
            )
    for structure in STRUCTURES:  # at the paper's T = 2
        label = f"T2_{structure}"
        out.append(BenchConfig(f"sirfshampoo_{label}", _sirfshampoo(2, None, structure)))
        out.append(
            BenchConfig(
                f"rootfree_shampoo_{label}",
                _rootfree_shampoo(2, None, structure),
                baseline=f"sirfshampoo_{label}",
            )
        )
    return out


def configs() -> list[BenchConfig]:
    return [*registered(), *variants()]


def step_of(optimizer, forward_backward) -> Callable[[], None]:
    """What is timed per step of a method whose curvature needs the backward pass: a forward
    and backward (their median time is subtracted afterwards), then the step."""

    def run() -> None:
        forward_backward()
        optimizer.step()

    return run


def make_model(name: str) -> torch.nn.Module:
    if name == "resnet18":
        return timm.create_model("resnet18", num_classes=10)
    if name == "vit":
        return timm.create_model("vit_tiny_patch16_224", num_classes=10, img_size=32, patch_size=4)
    raise ValueError(f"Unknown model {name!r}; choose one of ['resnet18', 'vit']")


class Timer:
    """Wall-clock on CPU; CUDA events around synchronised regions on GPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def __call__(self, fn: Callable[[], object]) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / 1e3
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held by the optimizer's state, with the attributes its ``STATE_ATTRIBUTES`` names
    (singd's Ks, Cs, m_Ks, m_Cs and SIRFShampoo's preconditioner live outside ``state``)."""
    tensors: list[torch.Tensor] = []

    def collect(value: object) -> None:
        if torch.is_tensor(value):
            tensors.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                collect(v)
        elif isinstance(value, list | tuple):
            for v in value:
                collect(v)
        elif hasattr(value, "named_tensors"):  # singd's StructuredMatrix
            for _, t in value.named_tensors():
                tensors.append(t)

    collect(list(optimizer.state.values()))
    for name in getattr(optimizer, "STATE_ATTRIBUTES", ()):
        collect(getattr(optimizer, name, None))
    return sum(t.numel() * t.element_size() for t in {id(t): t for t in tensors}.values())


def interleaved(timed: list[Callable[[], float]], rounds: int, warmup: int) -> list[list[float]]:
    """Each callable's times over ``rounds`` rounds after ``warmup``, the callables taking turns
    (in reverse order every other round), so that a machine's drift or stall hits each alike."""
    times: list[list[float]] = [[] for _ in timed]
    for r in range(warmup + rounds):
        for i in range(len(timed)) if r % 2 == 0 else reversed(range(len(timed))):
            took = timed[i]()
            if r >= warmup:
                times[i].append(took)
    return times


def ratio_ci(ours: list[float], theirs: list[float]) -> tuple[float, float]:
    """95% bootstrap interval of mean(ours) / mean(theirs), resampling the rounds in pairs."""
    if len(ours) < 2:
        return math.nan, math.nan
    result = scipy.stats.bootstrap(
        (ours, theirs),
        lambda a, b, axis=-1: a.mean(axis=axis) / b.mean(axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=2000,
        random_state=0,
    )
    return result.confidence_interval.low, result.confidence_interval.high


def groups(selected: list[BenchConfig]) -> list[list[BenchConfig]]:
    """Each config alone, or beside its baseline where that is selected too: the pair is timed
    interleaved (``interleaved``), so its ratio is not one run's luck against another's."""
    by_label = {c.label: c for c in selected}
    paired = {c.baseline for c in selected if c.baseline in by_label}
    return [
        [c, by_label[c.baseline]] if c.baseline in by_label else [c]
        for c in selected
        if c.label not in paired
    ]


class Bench:
    """One model's fixed batch, initial weights and gradients, from which every optimizer starts
    on a copy of its own (a method with hooks on the model must not see another's)."""

    def __init__(self, model_name: str, device: torch.device, batch: int) -> None:
        torch.manual_seed(0)
        self.model_name, self.device, self.batch = model_name, device, batch
        self.plain = make_model(model_name).to(device)
        self.x = torch.randn(batch, 3, 32, 32, device=device)
        self.y = torch.randint(0, 10, (batch,), device=device)
        self.fwd_bwd(self.plain)
        self.grads = [p.grad.clone() for p in self.plain.parameters()]

    def fwd_bwd(self, model: torch.nn.Module) -> None:
        model.zero_grad(set_to_none=False)
        torch.nn.functional.cross_entropy(model(self.x), self.y).backward()

    def optimizer(self, config: BenchConfig) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        model = copy.deepcopy(self.plain)
        for p, g in zip(model.parameters(), self.grads):
            p.grad = g.clone()
        return model, config.build(model, self.batch)


def bench_group(bench: Bench, group: list[BenchConfig], timer, args) -> list[dict]:
    """Rows of one group, its members' steps interleaved with a plain forward and backward when
    a member's curvature needs one (subtracted round by round)."""
    built = [bench.optimizer(config) for config in group]
    timed = [
        (lambda m=model, o=optimizer: timer(step_of(o, lambda: bench.fwd_bwd(m))))
        if config.with_backward
        else (lambda o=optimizer: timer(o.step))
        for config, (model, optimizer) in zip(group, built)
    ]
    needs_plain = any(c.with_backward for c in group)
    timed += [lambda: timer(lambda: bench.fwd_bwd(bench.plain))] if needs_plain else []
    times = interleaved(timed, args.steps, args.warmup)
    plain = times[-1] if needs_plain else None
    steps = [
        [t - f for t, f in zip(ts, plain)] if c.with_backward else ts for c, ts in zip(group, times)
    ]
    rows = [
        dict(
            model=bench.model_name,
            optimizer=config.label,
            baseline=config.baseline,
            step_median_ms=statistics.median(ts) * 1e3,
            step_mean_ms=statistics.fmean(ts) * 1e3,
            state_mib=state_bytes(optimizer) / 2**20,
            step_peak_extra_mib=peak_extra_mib(optimizer, bench.device),
        )
        for config, ts, (_, optimizer) in zip(group, steps, built)
    ]
    if len(group) == 2:
        rows[0]["vs_baseline_low"], rows[0]["vs_baseline_high"] = ratio_ci(*steps)
    return rows


def try_group(bench: Bench, group: list[BenchConfig], timer, args) -> list[dict] | None:
    """``bench_group``'s rows, or None (said in one line) when a member cannot step here."""
    try:
        return bench_group(bench, group, timer, args)
    except (ImportError, RuntimeError, ValueError, KeyError) as error:  # e.g. SINGD: no
        # curvature without a backward pass between steps, so fixed-gradient steps skip it
        labels = " + ".join(c.label for c in group)
        print(f"  {labels:28s} skipped: {type(error).__name__}: {error}"[:150])
        return None


def peak_extra_mib(optimizer: torch.optim.Optimizer, device: torch.device) -> float | None:
    """On CUDA, the memory one more step allocates beyond what is held before it."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    optimizer.step()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def bench_model(model_name: str, device: torch.device, args: argparse.Namespace) -> pd.DataFrame:
    timer = Timer(device)
    bench = Bench(model_name, device, args.batch)
    fwd_bwd = statistics.median(
        timer(lambda: bench.fwd_bwd(bench.plain)) for _ in range(args.fwd_bwd_reps)
    )
    print(f"\n{model_name} on {device}: fwd+bwd {fwd_bwd * 1e3:.1f} ms (batch {args.batch})")
    selected = [
        c for c in configs() if not args.only or any(c.label.startswith(o) for o in args.only)
    ]
    rows = []
    for group in groups(selected):
        new = try_group(bench, group, timer, args)
        if new is None and len(group) > 1:  # e.g. a reference that cannot take 4-D weights
            new = [row for config in group for row in try_group(bench, [config], timer, args) or []]
        for row in new or []:
            row.update(step_over_fwd_bwd=row["step_median_ms"] / 1e3 / fwd_bwd)
            row.update(fwd_bwd_ms=fwd_bwd * 1e3)
            print(f"  {row['optimizer']:28s} step {row['step_median_ms']:8.2f} ms "
                  f"(mean {row['step_mean_ms']:8.2f})")  # fmt: skip
            rows.append(row)
    return add_ratios(pd.DataFrame(rows))


def add_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """Ratios of median step time to AdamW (foreach, fused), and of mean step time (amortized
    over whole refresh periods: the timed steps are a multiple of every T) to each row's
    baseline, with the ratio of their state bytes."""
    by_label = frame.set_index("optimizer")
    median = by_label["step_median_ms"]
    for reference in ("adamw_foreach", "adamw_fused"):
        if reference in median:
            frame[f"vs_{reference}"] = frame["step_median_ms"] / median[reference]
    for column, ratio in (("step_mean_ms", "vs_baseline"), ("state_mib", "state_vs_baseline")):
        frame[ratio] = [
            getattr(row, column) / by_label[column][row.baseline]
            if row.baseline in by_label.index
            else None
            for row in frame.itertuples()
        ]
    return frame


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="resnet18,vit")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per optimizer")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--fwd-bwd-reps", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated label prefixes")
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args()
    args.only = [o for o in args.only.split(",") if o]
    device = torch.device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    for model_name in args.models.split(","):
        frame = bench_model(model_name, device, args)
        stem = args.out / f"{device.type}_{model_name}"
        frame.to_csv(stem.with_suffix(".csv"), index=False, float_format="%.4g")
        header = f"# {model_name}, batch {args.batch}, {machine(device)}\n\n"
        stem.with_suffix(".md").write_text(
            header + frame.drop(columns=["model"]).to_markdown(index=False, floatfmt=".3g") + "\n"
        )
        print(
            frame.drop(columns=["model", "fwd_bwd_ms"]).to_string(index=False, float_format="%.3g")
        )


if __name__ == "__main__":
    main()
