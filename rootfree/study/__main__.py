"""``rootfree-study`` (``make study``): run, collect and report the small-scale study of
experiments/study.yaml, resumable, N runs at a time.

Per question and optimizer: stage 1 samples the wide space (the optimizer's spec), stage 2 the
range of stage 1's best trials, then the chosen setting (best mean validation accuracy over the
trials, by ``rootfree.results.select_best``) is rerun with more seeds. Runs are plain train runs
under ``runs/study/<question>``; a relaunch skips what is finished. ``collect`` copies the
finished run records (no checkpoints) to results/study/runs/<question>, the folder to commit.

    rootfree-study plan                 # the runs, their estimated CPU time, what has settled
    rootfree-study run --jobs 2         # run (or resume) everything, single-threaded jobs
    rootfree-study run --launcher slurm --device cuda --jobs 64 --slurm slurm_partition=gpu
    rootfree-study collect              # copy finished records, rebuild their tables
    rootfree-study report               # tables, checks, plots from the records
    rootfree-study controls --only p2_vit   # design entries testing its failed checks
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from rootfree.optim import OPTIMIZERS
from rootfree.study.controls import controls, controls_yaml, holder
from rootfree.study.design import DESIGN, check_design, plan
from rootfree.study.kinds import make_questions
from rootfree.study.launchers import LAUNCHERS, make_launch
from rootfree.study.report import CHECKS, report
from rootfree.study.schedule import (
    collect_records,
    restore_records,
    run_all,
)


def fail(message: str) -> None:
    """One line on stderr and exit status 2, before anything runs."""
    print(f"rootfree-study: error: {message}", file=sys.stderr)
    sys.exit(2)


def _parameters(pairs: list[str]) -> dict:
    """--slurm KEY=VALUE pairs, values read as YAML (numbers stay numbers)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            fail(f"--slurm: {pair!r} is not KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def most_settled(*counts: dict[str, int]) -> dict[str, int]:
    """Per plan row, the larger settled count: the working runs (``--runs``) or the committed
    records (``--out``), so a fresh clone's plan counts what is committed."""
    return {key: max(c.get(key, 0) for c in counts) for key in {k for c in counts for k in c}}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rootfree-study",
        description=__doc__.split("\n\n")[0].replace("``", ""),
        epilog="\n\n".join(__doc__.split("\n\n")[1:]).replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["plan", "run", "collect", "report", "controls"])
    parser.add_argument("--design", type=Path, default=DESIGN, help="the study's questions")
    parser.add_argument(
        "--runs",
        type=Path,
        default=Path("runs/study"),
        help="where runs train (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("results/study/runs"),
        help="the committed records: collect writes them, report and plan read them "
        "(default: %(default)s)",
    )
    parser.add_argument("--tables", type=Path, help="where report writes (default: --out/..)")
    parser.add_argument("--only", default="", help="comma-separated question names")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (also on one GPU)")
    parser.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="cuda packs the runs on one GPU"
    )
    parser.add_argument("--retry-failed", action="store_true", help="rerun failed runs too")
    parser.add_argument(
        "--launcher",
        default="local",
        choices=LAUNCHERS,
        help="where runs execute: here, as SLURM jobs (submitit), or submitit's local executor",
    )
    parser.add_argument(
        "--slurm",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a submitit parameter over conf/hydra/launcher/slurm.yaml's, e.g. slurm_partition=gpu",
    )
    return parser


def _controls(questions: list, tables: Path, design: dict) -> int:
    """Print the design entries that test the comparisons' untested failed checks, less those
    the design holds already (planned, not yet run)."""
    try:
        entries = {
            name: entry
            for question in questions
            if question.kind == "comparison"
            for name, entry in controls(question, tables).items()
        }
    except FileNotFoundError as error:
        fail(f"--tables: {error}")
    held = {name: holder(name, entry, design) for name, entry in entries.items()}
    planned = [n if n == h else f"{n} (as {h})" for n, h in held.items() if h]
    if planned:
        print(f"# in the design already: {', '.join(planned)}")
    new = {name: entry for name, entry in entries.items() if not held[name]}
    print(controls_yaml(new).rstrip("\n") if new else "# no untested failed check lacks a control")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    document = yaml.safe_load(args.design.read_text())
    design, unit = document["questions"], document.get("unit", "CPU")
    try:
        check_design(design, OPTIMIZERS, CHECKS)
    except ValueError as error:
        fail(f"{args.design}: {error}")
    names = [n for n in args.only.split(",") if n] or list(design)
    for name in names:
        if name not in design:
            fail(f"--only: unknown question {name!r}; choose from {', '.join(design)}")
    everything = make_questions(design, args.runs.resolve())
    questions = [everything[name] for name in names]
    if args.command == "controls":
        return _controls(questions, args.tables or args.out.parent, design)
    if args.command == "plan":
        committed = make_questions(design, args.out.resolve())
        settled = {
            q.name: most_settled(
                q.settled_counts(everything), committed[q.name].settled_counts(committed)
            )
            for q in questions
        }
        plan(questions, args.jobs, settled, unit)
        return 0
    if args.command == "run":
        for question in everything.values():
            question.retry_failed = args.retry_failed
        restored = restore_records(list(everything.values()), args.out.resolve())
        print(f"restored {restored} committed records into {args.runs}", flush=True)
        launch = make_launch(args.launcher, args.runs / "submitit", _parameters(args.slurm))
        run_all(questions, everything, args.jobs, args.runs / "logs", args.device, launch)
    if args.command in ("run", "collect"):
        collect_records(questions, args.out)
    # records and the tables built from them always change together
    records = make_questions(design, args.out.resolve())
    report([records[q.name] for q in questions], records, args.out, args.tables or args.out.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
