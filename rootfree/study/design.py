"""The study's design (experiments/study.yaml): its questions, their search spaces and
two-stage random search, and the plan of runs with its CPU estimate."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import numpy as np
import yaml

from rootfree.config_paths import config_dir
from rootfree.optim import get_optimizer_spec
from rootfree.results.tuning import narrowed_ranges

DESIGN = (config_dir("experiments") or Path("experiments")) / "study.yaml"
SPACE = re.compile(r"(tag\(log,)?interval\(([^,]+),([^)]+)\)\)?")


def load_space(optimizer: str) -> dict[str, tuple[float, float, bool]]:
    """The stage-1 space of ``optimizer``: {key: (low, high, log)}, from its spec, or from
    conf/search/random/<optimizer>.yaml where that file replaces it."""
    path = config_dir("conf") / "search" / "random" / f"{optimizer}.yaml"
    if not path.exists():
        search = get_optimizer_spec(optimizer).search
        return {key: (r.low, r.high, r.log) for key, r in search.items()}
    text = yaml.safe_load(path.read_text())
    space = {}
    for key, value in text.items():
        match = SPACE.fullmatch(str(value).replace(" ", ""))
        if match is None:
            raise ValueError(f"cannot read the search space {key}: {value!r}")
        space[key.removeprefix("optimizer.")] = (float(match[2]), float(match[3]), bool(match[1]))
    return space


def sample(space: dict[str, tuple[float, float, bool]], n: int, seed: int) -> list[dict]:
    """``n`` settings drawn from ``space`` (log-uniform where marked), reproducibly."""
    rng = np.random.default_rng(seed)
    return [{key: _scaled(space[key], rng.uniform()) for key in sorted(space)} for _ in range(n)]


def latin_hypercube(space: dict[str, tuple[float, float, bool]], n: int, seed: int) -> list[dict]:
    """``n`` settings with one in each of n equal slices of every axis (log slices where marked),
    so that no decade of a wide lr space goes unsampled as it can in ``sample``'s draws. Drawn
    with numpy, not scipy.stats.qmc, whose streams may change between versions: a design's draws
    must not. Raising ``n`` redraws every setting."""
    rng = np.random.default_rng(seed)
    keys = sorted(space)
    units = (np.stack([rng.permutation(n) for _ in keys], axis=1) + rng.random((n, len(keys)))) / n
    return [{key: _scaled(space[key], u) for key, u in zip(keys, row)} for row in units]


def _scaled(bounds: tuple[float, float, bool], unit: float) -> float:
    """The point a fraction ``unit`` along [low, high] (along its log where marked), to 4 digits."""
    low, high, log = bounds
    value = (
        math.exp(math.log(low) + unit * (math.log(high) - math.log(low)))
        if log
        else low + unit * (high - low)
    )
    return float(f"{value:.4g}")


SAMPLERS = {"random": sample, "lhs": latin_hypercube}  # a question's stage-1 `sampler`


def merge_overrides(*groups: list[str]) -> list[str]:
    """Overrides in order, a later one replacing an earlier one of the same key (Hydra refuses
    two values for one key)."""
    merged: dict[str, str] = {}
    for group in groups:
        for override in group:
            merged[override.split("=", 1)[0].lstrip("+")] = override
    return list(merged.values())


class Question:
    """One question of the design and the run directories that answer it; its kind's class
    (rootfree.study.kinds) says how it plans, runs, counts and reports."""

    kind = ""

    def __init__(self, name: str, spec: dict, runs: Path) -> None:
        self.name, self.spec, self.runs = name, spec, runs / name
        self.chosen: dict[str, dict] = {}  # optimizer -> chosen setting, once its trials settle
        self.retry_failed = False  # whether its failed runs count as still to run

    def overrides(
        self,
        optimizer: str,
        setting: dict,
        seed: int,
        extra: list[str] = (),
        runs: Path | None = None,
    ) -> list[str]:
        return merge_overrides(
            self.spec["overrides"],
            [f"optimizer={optimizer}", *(f"optimizer.{k}={v}" for k, v in setting.items())],
            extra,
            [f"seed={seed}", f"paths.runs={runs or self.runs}"],
        )

    def space(self, optimizer: str) -> dict[str, tuple[float, float, bool]]:
        """The optimizer's stage-1 space with the question's bounds (``space``: key -> [low,
        high] for every optimizer with that key, or key -> {optimizer: [low, high]}) applied."""
        space = load_space(optimizer)
        for key, bounds in self.spec.get("space", {}).items():
            if isinstance(bounds, dict):
                bounds = bounds.get(optimizer)
            if key in space and bounds is not None:
                space[key] = (*map(float, bounds), space[key][2])
        return space

    def trials(self, optimizer: str) -> tuple[int, int]:
        """[stage 1, stage 2] trials of ``optimizer``: ``trials`` is a pair, or pairs by
        optimizer with a ``default``. Draws are sequential, so raising a count keeps every
        trial already drawn (and run) and only adds new ones."""
        trials = self.spec["trials"]
        first, second = (
            trials.get(optimizer, trials["default"]) if isinstance(trials, dict) else trials
        )
        return first, second

    def sampler_seed(self) -> int:
        """Stage 1 draws with this seed and stage 2 with the next (``sampler_seed``, default 1):
        a rerun of the whole search is the same question with another seed."""
        return int(self.spec.get("sampler_seed", 1))

    def stage1(self, optimizer: str) -> list[dict]:
        """Stage 1 by the question's ``sampler`` (stage 2 always draws at random, so that
        raising its count keeps the trials already run)."""
        draw = SAMPLERS[self.spec.get("sampler", "random")]
        return draw(self.space(optimizer), self.trials(optimizer)[0], seed=self.sampler_seed())

    def stage2_space(
        self, optimizer: str, trials: list[tuple[float, dict]]
    ) -> dict[str, tuple[float, float, bool]]:
        """The range of the best ``top`` fraction of the (score, setting) stage-1 ``trials``,
        widened by ``margin`` and clipped to the stage-1 space."""
        ranges = narrowed_ranges(trials, self.spec["top"], self.spec["margin"])
        return {
            key: (
                max(low, ranges.get(key, (low, high))[0]),
                min(high, ranges.get(key, (low, high))[1]),
                log,
            )
            for key, (low, high, log) in self.space(optimizer).items()
        }

    def stage2(self, optimizer: str, trials: list[tuple[float, dict]]) -> list[dict]:
        space = self.stage2_space(optimizer, trials)
        return sample(space, self.trials(optimizer)[1], seed=self.sampler_seed() + 1)

    def plan_rows(self) -> list[tuple[str, int, float]]:
        """(what, runs, CPU minutes per run), before anything has run."""
        raise NotImplementedError

    def pending(self, everything: dict[str, Question]) -> list[list[str]]:
        """The overrides of every run that can start now."""
        raise NotImplementedError

    def settled_counts(self, everything: dict[str, Question]) -> dict[str, int]:
        """Settled runs on disk per plan row."""
        raise NotImplementedError

    def report(self, everything: dict[str, Question], records: Path, out: Path):
        """Write its tables under ``out``; (failed checks, unanswered ones) or None."""
        raise NotImplementedError


KEYS = {  # the keys a design entry of each kind may set
    "comparison": {
        "title",
        "overrides",
        "optimizers",
        "space",
        "trials",
        "top",
        "margin",
        "seeds",
        "checks",
        "minutes",
        "sampler",
        "sampler_seed",
        "rerun_of",
        "holm",
    },
    "derived": {
        "title",
        "kind",
        "from",
        "optimizer",
        "overrides",
        "grid",
        "cells",
        "references",
        "transfer",
        "paired",
        "answers",
        "seeds",
        "checks",
        "minutes",
    },
    "computation": {"title", "kind", "function", "minutes"},
}


def check_design(design: dict, optimizers, checks) -> None:
    """Raise a one-line ValueError naming the question, key, bad value and valid choices for
    a design the driver cannot run, before anything runs."""

    def bad(name: str, key: str, value, choices) -> ValueError:
        return ValueError(f"{name}.{key}: {value!r} is not valid; choose from {sorted(choices)}")

    for name, spec in design.items():
        kind = spec.get("kind", "comparison")
        if kind not in KEYS:
            raise bad(name, "kind", kind, KEYS)
        for key in spec:
            if key not in KEYS[kind]:
                raise bad(name, key, spec[key], KEYS[kind])
        methods = spec.get("optimizers", [spec.get("optimizer")] if kind == "derived" else [])
        for method in [*methods, *spec.get("references", [])]:
            if method not in optimizers:
                raise bad(name, "optimizer", method, optimizers)
        for check in spec.get("checks", []):
            if check not in checks:
                raise bad(name, "checks", check, checks)
        if spec.get("sampler", "random") not in SAMPLERS:
            raise bad(name, "sampler", spec["sampler"], SAMPLERS)
        if "holm" in spec:
            _check_holm(name, spec, bad)
        if kind == "derived":
            _check_derived(name, spec, design, bad)
        if "rerun_of" in spec:
            _check_rerun(name, spec, design, bad)


def _check_holm(name: str, spec: dict, bad) -> None:
    """``holm``: ordered families (name -> optimizers of the question) that name every one of
    its optimizers, so no test falls outside a declared family."""
    families, methods = spec["holm"], spec.get("optimizers", [])
    if not isinstance(families, dict):
        raise ValueError(f"{name}.holm: {families!r} is not a mapping of family -> optimizers")
    for family, members in families.items():
        if not isinstance(members, list):
            raise ValueError(f"{name}.holm.{family}: {members!r} is not a list of optimizers")
        for method in members:
            if method not in methods:
                raise bad(name, f"holm.{family}", method, methods)
    named = [m for members in families.values() for m in members]
    if missing := [m for m in methods if m not in named]:
        raise ValueError(f"{name}.holm: no family names {missing}; every optimizer needs one")
    if twice := sorted({m for m in named if named.count(m) > 1}):
        raise ValueError(f"{name}.holm: {twice} named by two families; name each in one")


def _check_rerun(name: str, spec: dict, design: dict, bad) -> None:
    """``rerun_of``: a comparison with the same optimizers, overrides, sampler and Holm families
    searched with another ``sampler_seed`` (the next one is stage 2's, so two apart at least)."""
    others = [
        n for n, q in design.items() if n != name and q.get("kind", "comparison") == "comparison"
    ]
    source = design.get(spec["rerun_of"])
    if spec["rerun_of"] not in others:
        raise bad(name, "rerun_of", spec["rerun_of"], others)
    for key in ("optimizers", "overrides", "sampler", "holm"):
        if source.get(key) != spec.get(key):
            raise ValueError(f"{name}.{key}: a rerun of {spec['rerun_of']} must have its {key}")
    seeds = {int(q.get("sampler_seed", 1)) for q in (source, spec)}
    if len(seeds) < 2 or max(seeds) - min(seeds) < 2:
        raise ValueError(
            f"{name}.sampler_seed: {spec.get('sampler_seed', 1)!r} must differ from "
            f"{spec['rerun_of']}'s by 2 or more (each search uses its seed and the next)"
        )


def _check_derived(name: str, spec: dict, design: dict, bad) -> None:
    """``from``: a question that searched ``optimizer`` and ``references``; ``answers``: one of
    its checks; then the grid's keys."""
    if spec.get("from") not in design:
        raise bad(name, "from", spec.get("from"), [n for n in design if n != name])
    source = design[spec["from"]]
    for method in [spec["optimizer"], *spec.get("references", [])]:
        if method not in source.get("optimizers", []):
            raise bad(name, "optimizer", method, source.get("optimizers", []))
    if "answers" in spec and spec["answers"] not in source.get("checks", []):
        raise bad(name, "answers", spec["answers"], source.get("checks", []))
    if "transfer" in spec:
        _check_transfer(name, spec, bad)
    _check_cells(name, spec, bad)


def _check_transfer(name: str, spec: dict, bad) -> None:
    """``transfer``: {sweep, across: grid axes; anchor: a label of ``across``}."""
    transfer, grid = spec["transfer"], spec["grid"]
    for key in ("sweep", "across"):
        if transfer.get(key) not in grid:
            raise bad(name, f"transfer.{key}", transfer.get(key), grid)
    labels = [str(label) for label in grid[transfer["across"]]]
    if str(transfer.get("anchor")) not in labels:
        raise bad(name, "transfer.anchor", transfer.get("anchor"), labels)
    if "compare" in transfer:
        _check_compare(name, transfer, grid, bad)


def _check_compare(name: str, transfer: dict, grid: dict, bad) -> None:
    """``transfer.compare``: {axis: another grid axis; a, b: two of its labels}."""
    compare = transfer["compare"]
    others = [axis for axis in grid if axis not in (transfer["sweep"], transfer["across"])]
    if compare.get("axis") not in others:
        raise bad(name, "transfer.compare.axis", compare.get("axis"), others)
    labels = [str(label) for label in grid[compare["axis"]]]
    for key in ("a", "b"):
        if str(compare.get(key)) not in labels:
            raise bad(name, f"transfer.compare.{key}", compare.get(key), labels)


def _check_cells(name: str, spec: dict, bad) -> None:
    """``cells``: label paths of the grid; ``paired``: {axis: a grid axis, base: {a label of
    another axis: a label of ``axis``}}."""
    labels = grid_labels({"grid": spec["grid"]})
    for cell in spec.get("cells", []):
        if cell not in labels:
            raise bad(name, "cells", cell, labels)
    if "paired" in spec:
        axis = spec["paired"].get("axis")
        if axis not in spec["grid"]:
            raise bad(name, "paired.axis", axis, spec["grid"])
        base = spec["paired"].get("base", {})
        for group, label in base.items():
            if str(label) not in map(str, spec["grid"][axis]):
                raise bad(name, f"paired.base.{group}", label, spec["grid"][axis])
        for cell in grid_labels(spec):
            if not set(cell.split("/")) & set(base):
                raise ValueError(
                    f"{name}.paired.base: no base for the cell {cell!r}; key it by one of its labels"
                )


def seed_list(seeds: int | list[int]) -> list[int]:
    """``seeds``: a count (seeds 0 to n - 1) or the seeds themselves, e.g. fresh ones [1, 2]
    where seed 0 made a selection that these runs re-measure."""
    return list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]


def cell_minutes(minutes: dict, label: str) -> float:
    """A grid cell's estimate: ``minutes`` of its longest label prefix ("32/with_B", then
    "32"), else the default."""
    parts, each = label.split("/"), {str(k): v for k, v in minutes.items()}
    for end in range(len(parts), 0, -1):
        if "/".join(parts[:end]) in each:
            return each["/".join(parts[:end])]
    return minutes["default"]


def grid_cells(spec: dict) -> list[tuple[tuple[str, ...], list[str]]]:
    """(labels, overrides) of each combination of the grid's axes, or of its ``cells`` only
    (label paths such as "32/with_B")."""
    cells = []
    for combination in itertools.product(*(axis.items() for axis in spec["grid"].values())):
        labels = tuple(str(label) for label, _ in combination)
        if "cells" not in spec or "/".join(labels) in spec["cells"]:
            cells.append((labels, [o for _, group in combination for o in group]))
    return cells


def grid_labels(spec: dict) -> list[str]:
    return ["/".join(labels) for labels, _ in grid_cells(spec)]


PLAN_ROWS = 12  # a grid with more cells prints one row per label prefix


def plan_lines(
    rows: list[tuple[str, int, float]], settled: dict[str, int]
) -> list[tuple[str, int, float, int]]:
    """(what, runs, CPU minutes, settled runs) per plan row; a grid of more than PLAN_ROWS
    cells is summed over its last axis ("32/with_B/*"), so the plan stays readable."""
    lines = [(what, n, n * minutes, min(n, settled.get(what, 0))) for what, n, minutes in rows]
    if len(lines) <= PLAN_ROWS or not all("/" in what for what, *_ in lines):
        return lines
    folded: dict[str, tuple[int, float, int]] = {}
    for what, *counts in lines:
        key = what.rsplit("/", 1)[0] + "/*"
        folded[key] = tuple(a + b for a, b in zip(folded.get(key, (0, 0.0, 0)), counts))
    return [(what, *counts) for what, counts in folded.items()]


def plan(
    questions: list[Question], jobs: int, settled: dict[str, dict[str, int]], unit: str = "CPU"
) -> float:
    """Print the runs of each question with their estimated minutes (``unit``: what a run
    occupies, a CPU thread or a GPU) and how many are settled already (``settled``: question ->
    plan row -> runs); return the hours left."""
    total = left = 0.0
    for question in questions:
        print(f"{question.name}: {question.spec['title']}")
        lines = plan_lines(question.plan_rows(), settled.get(question.name, {}))
        for what, runs, cpu, done in lines:
            each = cpu / runs if runs else 0.0
            total, left = total + cpu, left + each * (runs - done)
            print(
                f"  {what:22s} {runs:4d} runs x {each:4.1f} min = {cpu:6.1f} {unit} min"
                f"  {done:4d} settled"
            )
    print(
        f"total: {total / 60:.1f} {unit} hours; left: {left / 60:.1f}, "
        f"about {left / 60 / jobs:.1f} h with {jobs} jobs"
    )
    return left / 60
