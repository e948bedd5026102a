"""`make paper-small`: the paper's comparison at small scale, end to end, on CPU.

1. a random search (Optuna's random sampler, stage-1 spaces) per model and optimizer, seed 0;
2. the best setting of each (by validation accuracy) rerun with seeds 1 and 2;
3. the precision question (docs/update_rules.md, bf16): RF-RMSProp's best setting with bf16 state, 3 seeds;
4. the run records (config, status, metrics, provenance; no checkpoints) copied to
   results/paper_small/runs/, and the tables (with the precision table) and plots built from
   them under results/paper_small/; `make tables` rebuilds them from the committed records.

Every step skips finished runs, so an interrupted `make paper-small` continues where it stopped.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from rootfree.record import RECORD_FILES, iter_runs

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("small_cnn", "vit")
OPTIMIZERS = ("sgd", "adamw", "rootfree_adam", "rootfree_rmsprop", "shampoo", "rootfree_shampoo")


def train(*overrides: str, multirun: bool = False) -> None:
    command = [sys.executable, str(ROOT / "train.py"), *(["-m"] if multirun else []), *overrides]
    print("+", " ".join(command[2:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def best_run(runs: Path, model: str, optimizer: str) -> Path:
    """The finished seed-0 run of (model, optimizer) with the highest validation accuracy."""
    best, best_acc = None, -1.0
    for record in iter_runs(runs):
        config = record.config
        if (
            record.state == "done"
            and not record.problems
            and config["seed"] == 0
            and config["model"]["name"] == model
            and config["optimizer"]["name"] == optimizer
            and record.final["val_acc"] > best_acc
        ):
            best, best_acc = record.path, record.final["val_acc"]
    if best is None:
        raise RuntimeError(f"no finished run of {model} / {optimizer} in {runs}")
    return best


def rerun(run: Path, runs: Path, *extra: str) -> list[str]:
    """The task overrides that made ``run``, without its seed and output path."""
    overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
    kept = [o for o in overrides if not o.startswith(("seed=", "paths.runs=", "hydra"))]
    return [*kept, f"paths.runs={runs}", *extra]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "paper_small")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "paper_small")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    parser.add_argument(
        "--extra", nargs="*", default=[], help="overrides for every run, e.g. trainer.device=cuda"
    )
    args = parser.parse_args()
    models, optimizers = args.models.split(","), args.optimizers.split(",")
    common = ["experiment=paper_small", f"paths.runs={args.runs}", *args.extra]
    search = ["tuning=random", f"hydra.sweeper.n_trials={args.trials}"]
    for model in models:
        for optimizer in optimizers:
            train(*common, f"model={model}", f"optimizer={optimizer}", *search, multirun=True)
    for model in models:
        for optimizer in optimizers:
            best = best_run(args.runs, model, optimizer)
            for seed in (1, 2):
                train(*rerun(best, args.runs, f"seed={seed}"))
            if optimizer == "rootfree_rmsprop":
                for seed in (0, 1, 2):
                    train(*rerun(best, args.runs, f"seed={seed}", "optimizer.state_dtype=bfloat16"))
    records = args.out / "runs"
    for status_path in args.runs.glob("*/status.json"):
        target = records / status_path.parent.name
        target.mkdir(parents=True, exist_ok=True)
        for name in RECORD_FILES:
            if (status_path.parent / name).exists():
                shutil.copy2(status_path.parent / name, target / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rootfree.results",
            str(records),
            "--out",
            str(args.out),
            "--plots",
            "--optimizers",
            ",".join(optimizers),
        ],
        check=True,
        cwd=ROOT,
    )
    print((args.out / "comparison.md").read_text())
