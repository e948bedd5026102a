"""`make paper-small`: the paper's comparison at small scale, end to end, on CPU.

1. a random search (Optuna's random sampler, stage-1 spaces) per model and optimizer, seed 0;
2. the best setting of each (by validation accuracy) rerun with seeds 1 and 2;
3. the precision question (paper.md 1.1.2): RF-RMSProp's best setting with bf16 state, 3 seeds;
4. the tables and plots (rootfree.results) and the precision table, under results/paper_small/.

Every step skips finished runs, so an interrupted `make paper-small` continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("small_cnn", "vit")
OPTIMIZERS = ("sgd", "adamw", "rootfree_adam", "rootfree_rmsprop", "shampoo", "rootfree_shampoo")


def train(*overrides: str, multirun: bool = False) -> None:
    command = [sys.executable, str(ROOT / "train.py"), *(["-m"] if multirun else []), *overrides]
    print("+", " ".join(command[2:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def best_run(runs: Path, model: str, optimizer: str, **match: str) -> Path:
    """The finished seed-0 run of (model, optimizer) with the highest validation accuracy."""
    best, best_acc = None, -1.0
    for status_path in runs.glob("*/status.json"):
        status = json.loads(status_path.read_text())
        config = yaml.safe_load((status_path.parent / "config.yaml").read_text())
        if (
            status["status"] == "done"
            and config["seed"] == 0
            and config["model"]["name"] == model
            and config["optimizer"]["name"] == optimizer
            and all(str(config["optimizer"].get(k)) == v for k, v in match.items())
            and status["final"]["val_acc"] > best_acc
        ):
            best, best_acc = status_path.parent, status["final"]["val_acc"]
    if best is None:
        raise RuntimeError(f"no finished run of {model} / {optimizer} in {runs}")
    return best


def rerun(run: Path, runs: Path, *extra: str) -> list[str]:
    """The task overrides that made ``run``, without its seed and output path."""
    overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
    kept = [o for o in overrides if not o.startswith(("seed=", "paths.runs=", "hydra"))]
    return [*kept, f"paths.runs={runs}", *extra]


def precision_table(runs: Path) -> pd.DataFrame:
    rows = []
    for status_path in runs.glob("*/status.json"):
        config = yaml.safe_load((status_path.parent / "config.yaml").read_text())
        status = json.loads(status_path.read_text())
        if config["optimizer"]["name"] == "rootfree_rmsprop" and status["status"] == "done":
            rows.append(
                {
                    "model": config["model"]["name"],
                    "state_dtype": config["optimizer"]["state_dtype"] or "float32",
                    "setting": json.dumps(
                        {k: v for k, v in config["optimizer"].items() if k != "state_dtype"},
                        sort_keys=True,
                    ),
                    "seed": config["seed"],
                    "test_acc": status["final"]["test_acc"],
                }
            )
    frame = pd.DataFrame(rows)
    counts = frame.groupby(["model", "setting"])["state_dtype"].nunique()
    paired = frame.set_index(["model", "setting"]).loc[counts[counts == 2].index].reset_index()
    return (
        paired.groupby(["model", "state_dtype"])["test_acc"]
        .agg(["mean", "std", "count"])
        .reset_index()
    )


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
    search = [
        "hydra/sweeper=optuna",
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.direction=maximize",
        f"hydra.sweeper.n_trials={args.trials}",
        "hydra.sweeper.sampler.seed=0",
    ]
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
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rootfree.results",
            str(args.runs),
            "--out",
            str(args.out),
            "--plots",
            "--optimizers",
            ",".join(optimizers),
        ],
        check=True,
        cwd=ROOT,
    )
    table = precision_table(args.runs)
    (args.out / "precision.md").write_text(
        "# RF-RMSProp: the same best settings with fp32 and with bf16 optimizer state (3 seeds)\n\n"
        + table.to_markdown(index=False, floatfmt=".4f")
        + "\n"
    )
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
