"""A study's validity criteria as pure functions of its tidy frame and its chosen settings.

Each check returns one row per chosen (dataset, model, budget, optimizer) cell with the measured
value, the threshold and whether it passed, so a report prints them beside the comparison they
guard.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
from scipy import stats

from rootfree.optim import OPTIMIZERS
from rootfree.results.select import CELL, primary_metric, select_best, signed_score
from rootfree.results.stability import COLLAPSE
from rootfree.results.stats import summarize


def _chosen_runs(frame: pd.DataFrame, cell: pd.Series) -> pd.DataFrame:
    return frame[(frame["setting"] == cell["setting"]) & (frame["status"] == "done")]


def _final_rows(runs: pd.DataFrame) -> pd.DataFrame:
    logged = runs.dropna(subset=["epoch"])
    return logged.loc[logged.groupby("run")["epoch"].idxmax()]


def _row(cell: pd.Series, check: str, value: float, threshold: str, passed: bool) -> dict:
    return {
        **{c: cell[c] for c in CELL},
        "check": check,
        "value": value,
        "threshold": threshold,
        "passed": bool(passed),
    }


MEASURES = {
    "train_acc": "train accuracy, last epoch's running mean (worst seed; the first measure)",
    "train_eval_acc": "train accuracy, final model (worst seed; used since SGD failed the first)",
}


def converged(frame: pd.DataFrame, chosen: pd.DataFrame, minimum: float = 0.99) -> pd.DataFrame:
    """Every seed of the chosen setting ends with training accuracy >= ``minimum``, by both
    measures: the last epoch's running train accuracy (the design's first measure, an average
    over weights that change during the epoch), and the final model evaluated on the training
    split where every seed has that record. The criterion moved to the second after SGD failed
    the first; both rows stay, so the switch shows."""
    rows = []
    for _, cell in chosen.iterrows():
        final = _final_rows(_chosen_runs(frame, cell))
        for column, check in MEASURES.items():
            if column not in final or not len(final) or final[column].isna().any():
                continue
            value = float(final[column].min())
            rows.append(_row(cell, check, value, f">= {minimum:g}", value >= minimum))
    return pd.DataFrame(rows)


def warm_preconditioner(
    frame: pd.DataFrame, chosen: pd.DataFrame, multiple: float = 5.0
) -> pd.DataFrame:
    """Steps taken x lr_cov >= ``multiple``: the second-moment EMA (time constant 1 / lr_cov
    steps) has forgotten its start. Cells without an lr_cov, or of a method whose EMA is
    bias-corrected (its spec's ``bias_corrected``: no start to forget), are not checked."""
    rows = []
    for _, cell in chosen.iterrows():
        runs = _chosen_runs(frame, cell)
        spec = OPTIMIZERS.get(cell["optimizer"])
        if runs.empty or pd.isna(runs["lr_cov"].iloc[0]) or (spec and spec.bias_corrected):
            continue
        steps = float(_final_rows(runs)["step"].min())
        value = steps * float(runs["lr_cov"].iloc[0])
        rows.append(_row(cell, "steps x lr_cov", value, f">= {multiple:g}", value >= multiple))
    return pd.DataFrame(rows)


def expected_best(values: np.ndarray, k: int) -> float:
    """E[max of k draws with replacement from ``values``], exactly: sum_i v_(i) P(max = v_(i))."""
    ordered = np.sort(values)
    n = len(ordered)
    cdf = (np.arange(1, n + 1) / n) ** k
    return float(np.sum(ordered * np.diff(np.concatenate([[0.0], cdf]))))


def tuning_saturated(scores: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """E[best validation accuracy] (a language model's: minus its loss) at N trials minus at
    N/2 is below the chosen setting's 95% CI half-width over seeds: more trials would not
    change the pick beyond seed noise."""
    rows = []
    for _, cell in chosen.iterrows():
        mine = scores[(scores[CELL] == cell[CELL]).all(axis=1)]
        mine = mine.assign(score=signed_score(mine)).dropna(subset=["score"])
        trials = mine[mine["seed"] == mine["seed"].min()].groupby("setting")["score"].mean()
        half = max(1, len(trials) // 2)
        gain = expected_best(trials.to_numpy(), len(trials)) - expected_best(
            trials.to_numpy(), half
        )
        noise = summarize(mine[mine["setting"] == cell["setting"]]["score"].tolist())["ci"]
        rows.append(
            _row(
                cell,
                f"E[best val] gain from {half} to {len(trials)} trials",
                gain,
                f"< seed CI {noise:.4f}",
                gain < noise,
            )
        )
    return pd.DataFrame(rows)


TIGHTEST = "(tightest: {edge})"  # how a bound check names its tightest side, "lr high"
_TIGHTEST = re.compile(r"\(tightest: (\w+) (low|high)\)")


def tightest_edge(check: str) -> tuple[str, str] | None:
    """(hyperparameter, "low" or "high") that a bound check's text names, else None."""
    match = _TIGHTEST.search(check)
    return (match[1], match[2]) if match else None


def _bound_factors(setting: pd.Series, space: dict[str, tuple]) -> dict[str, float]:
    """``"name side"`` -> the factor by which the setting's value lies inside that bound."""
    factors = {}
    for name, (low, high, _) in space.items():
        value = setting.get(name)
        if pd.notna(value):
            factors[f"{name} low"] = value / low if low > 0 else math.inf
            factors[f"{name} high"] = high / value
    return factors


def bracketed(
    scores: pd.DataFrame, chosen: pd.DataFrame, spaces: dict[str, dict[str, tuple]], margin: float
) -> pd.DataFrame:
    """Every searched hyperparameter of the chosen setting lies at least a factor ``margin``
    inside its stage-1 bounds ``spaces[optimizer][name] = (low, high, log)``. Stage 2 looks a
    factor ``margin`` past its best trials, but never past these bounds: a choice nearer to one
    may have its optimum outside the space. The value is the tightest factor and names it."""
    rows = []
    for _, cell in chosen.iterrows():
        setting = scores[scores["setting"] == cell["setting"]].iloc[0]
        factors = _bound_factors(setting, spaces[cell["optimizer"]])
        if not factors:
            continue
        edge = min(factors, key=factors.get)
        check = f"inside stage-1 bounds by a factor {TIGHTEST.format(edge=edge)}"
        rows.append(_row(cell, check, factors[edge], f">= {margin:g}", factors[edge] >= margin))
    return pd.DataFrame(rows)


def contained(
    scores: pd.DataFrame,
    chosen: pd.DataFrame,
    narrowed: dict[str, dict[str, tuple]],
    spaces: dict[str, dict[str, tuple]],
    margin: float,
) -> pd.DataFrame:
    """The chosen setting lies at least a factor ``margin`` inside stage 2's range
    ``narrowed[optimizer]`` on every side where that range stops short of the stage-1 bounds
    ``spaces[optimizer]``: a choice near such a side was still improving towards it when the
    search stopped. The value is the tightest factor and names it (inf: no such side)."""
    rows = []
    for _, cell in chosen.iterrows():
        if cell["optimizer"] not in narrowed:
            continue
        setting = scores[scores["setting"] == cell["setting"]].iloc[0]
        inner, outer = narrowed[cell["optimizer"]], spaces[cell["optimizer"]]
        factors = {
            side: factor
            for side, factor in _bound_factors(setting, inner).items()
            if _stops_short(side, inner, outer)
        }
        edge = min(factors, key=factors.get) if factors else "none inside stage 1"
        value = factors.get(edge, math.inf)
        check = f"inside stage-2 range by a factor {TIGHTEST.format(edge=edge)}"
        passed = value >= margin * (1 - 1e-9)  # a stage-1 trial at the range's end: margin
        rows.append(_row(cell, check, value, f">= {margin:g}", passed))
    return pd.DataFrame(rows)


def _stops_short(side: str, inner: dict[str, tuple], outer: dict[str, tuple]) -> bool:
    """Whether the ``"name low"`` or ``"name high"`` bound of ``inner`` lies inside ``outer``."""
    name, end = side.rsplit(" ", 1)
    (low, high, _), (wide_low, wide_high, _) = inner[name], outer[name]
    return low > wide_low if end == "low" else high < wide_high


def enough_seeds(chosen: pd.DataFrame, minimum: int = 5) -> pd.DataFrame:
    return pd.DataFrame(
        [
            _row(c, "seeds", c["seeds"], f">= {minimum}", c["seeds"] >= minimum)
            for _, c in chosen.iterrows()
        ]
    )


def plateaued(
    frame: pd.DataFrame, chosen: pd.DataFrame, optimizer: str | None = None, fraction: float = 0.75
) -> pd.DataFrame:
    """Each chosen setting's (``optimizer``'s only, where given) mean validation accuracy (a
    language model's: loss, falling) gains less than its seed CI after the last evaluation at
    or before ``fraction`` of training (the run has reached its plateau)."""
    rows = []
    mine = chosen if optimizer is None else chosen[chosen["optimizer"] == optimizer]
    for _, cell in mine.iterrows():
        runs = _chosen_runs(frame, cell)
        runs = runs.assign(score=signed_score(runs)).dropna(subset=["score"])
        curve = runs.groupby("epoch")["score"].mean()
        last = curve.index.max()
        earlier = curve[curve.index <= fraction * last]
        if earlier.empty:
            continue
        gain = float(curve[last] - earlier.iloc[-1])
        noise = summarize(runs[runs["epoch"] == last]["score"].tolist())["ci"]
        rows.append(
            _row(
                cell,
                f"val gain after epoch {earlier.index[-1]:g} of {last:g}",
                gain,
                f"< seed CI {noise:.4f}",
                gain < noise,
            )
        )
    return pd.DataFrame(rows)


def direct_test(cells: dict[str, list[float]], reference: list[float]) -> dict:
    """A failed check's concern tested directly: runs that go where the check points (longer
    training, past a search bound) do no better than the chosen setting. ``cells``: label ->
    the validation accuracies of its seeds; ``reference``: the chosen setting's. Passes when
    the best cell's mean gains less than the reference's seed CI."""
    means = {label: float(np.mean(v)) for label, v in cells.items() if len(v)}
    noise = summarize(reference)
    best = max(means, key=means.get) if means else None
    gain = means[best] - noise["mean"] if best is not None else math.nan
    return {"best": best, "gain": gain, "ci": noise["ci"], "passed": bool(gain < noise["ci"])}


def minimal_detectable_difference(
    std: float, n: int, power: float = 0.8, alpha: float = 0.05
) -> float:
    """The smallest true difference of two means over ``n`` seeds each (common ``std``) that a
    two-sided t-test at ``alpha`` detects with probability ``power``."""
    if n < 2 or not math.isfinite(std):
        return math.nan
    dof = 2 * n - 2
    return (stats.t.ppf(1 - alpha / 2, dof) + stats.t.ppf(power, dof)) * std * math.sqrt(2 / n)


def stable(scores: pd.DataFrame, chosen: pd.DataFrame, limit: float = COLLAPSE) -> pd.DataFrame:
    """No seed of the chosen setting collapses: its running training accuracy never falls more
    than ``limit`` below its best so far (``worst_acc_drop``, from ``run_scores``)."""
    rows = []
    for _, cell in chosen.iterrows():
        runs = scores[(scores["setting"] == cell["setting"]) & (scores["status"] == "done")]
        value = float(runs["worst_acc_drop"].max()) if len(runs) else math.nan
        check = "worst fall of running train accuracy (worst seed)"
        rows.append(_row(cell, check, value, f"< {limit:g}", value < limit))
    return pd.DataFrame(rows)


def stable_alternatives(
    scores: pd.DataFrame, chosen: pd.DataFrame, limit: float = COLLAPSE
) -> pd.DataFrame:
    """Per chosen cell: its worst seed's fall of running train accuracy and, where it collapses,
    the setting the same selection rule picks among the trials that never fall by ``limit``
    (their runs so far: the search's seed 0), with its validation and test primary metric
    (accuracy; a language model's loss)."""
    collapsed = set(scores.loc[scores["worst_acc_drop"] >= limit, "setting"])
    steady = scores[~scores["setting"].isin(collapsed)]
    alternatives = select_best(steady).set_index(CELL) if len(steady) else pd.DataFrame()
    rows = []
    for _, cell in chosen.iterrows():
        mine = scores[(scores["setting"] == cell["setting"]) & (scores["status"] == "done")]
        row = {c: cell[c] for c in CELL}
        row |= {"chosen_worst_drop": float(mine["worst_acc_drop"].max()), "stable_setting": ""}
        key = tuple(cell[c] for c in CELL)
        if row["chosen_worst_drop"] >= limit and key in alternatives.index:
            setting = alternatives.loc[key, "setting"]
            metric = primary_metric(cell["dataset"]).name
            runs = scores[(scores["setting"] == setting) & scores[f"val_{metric}"].notna()]
            row |= {
                "stable_setting": setting,
                "stable_seeds": len(runs),
                f"stable_val_{metric}": float(runs[f"val_{metric}"].mean()),
                f"stable_test_{metric}": float(runs[f"test_{metric}"].mean()),
                "stable_worst_drop": float(runs["worst_acc_drop"].max()),
            }
        rows.append(row)
    return pd.DataFrame(rows)
