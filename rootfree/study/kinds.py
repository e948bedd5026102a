"""The kinds of study question, each a class with its own plan, runs, progress and report: a
comparison searches and reseeds optimizers, a derived question reruns a comparison's choice
over a grid, a computation is a deterministic table. ``make_question`` picks the class by the
design entry's ``kind``; the driver, the plan and the report call the methods, never switch."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rootfree.record import RunStatus, read_run
from rootfree.record.rundir import RunDir
from rootfree.study import report as reporting
from rootfree.study import schedule
from rootfree.study.design import Question, cell_minutes, grid_labels, seed_list


class Comparison(Question):
    """Optimizers tuned in two random-search stages, then the chosen settings reseeded."""

    kind = "comparison"

    def plan_rows(self) -> list[tuple[str, int, float]]:
        minutes = self.spec["minutes"]
        return [
            (
                opt,
                sum(self.trials(opt)) + self.spec["seeds"] - 1,
                minutes.get(opt, minutes["default"]),
            )
            for opt in self.spec["optimizers"]
        ]

    def pending(self, everything: dict[str, Question]) -> list[list[str]]:
        return [o for opt in self.spec["optimizers"] for o in schedule.progress(self, opt)[0]]

    def settled_counts(self, everything: dict[str, Question]) -> dict[str, int]:
        """Settled runs on disk per optimizer, runs of this design only."""
        counts: Counter[str] = Counter()
        for status in self.runs.glob("*/status.json") if self.runs.exists() else []:
            state = (RunDir(status.parent, writer=False).status() or {}).get("status")
            if state is not None and RunStatus(state).settled(self.retry_failed):
                config = read_run(status.parent).config
                if config and schedule.follows_design(config, self.spec.get("overrides", [])):
                    counts[config["optimizer"]["name"]] += 1
        return dict(counts)

    def report(self, everything: dict[str, Question], records: Path, out: Path):
        """Tables, checks and plots; (failed checks, unanswered ones), or None without records."""
        if not (records / self.name).exists():
            return None
        checks = reporting.report_question(self, everything, records / self.name, out / self.name)
        if "rerun_of" in self.spec and (records / self.spec["rerun_of"]).exists():
            reporting.write_rerun(self, records, out / self.name)
        failed = int((~checks["passed"]).sum()), reporting.unanswered(checks)
        print(
            f"{self.name}: {len(checks)} validity checks, {failed[0]} failed, {failed[1]} not "
            "answered by a passing direct test"
        )
        return failed


class Derived(Question):
    """A comparison's chosen setting of one optimizer rerun over a grid of overrides."""

    kind = "derived"

    def plan_rows(self) -> list[tuple[str, int, float]]:
        seeds = len(seed_list(self.spec["seeds"]))
        return [
            (label, seeds, cell_minutes(self.spec["minutes"], label))
            for label in grid_labels(self.spec)
        ]

    def pending(self, everything: dict[str, Question]) -> list[list[str]]:
        runs = schedule.derived_runs(self, everything[self.spec["from"]])
        every = [o for group in (runs or {}).values() for o in group]
        return schedule.unfinished(every, self.retry_failed)

    def settled_counts(self, everything: dict[str, Question]) -> dict[str, int]:
        """Settled runs on disk per grid cell ("32/with_B")."""
        if not self.runs.exists():
            return {}
        runs = schedule.derived_runs(self, everything[self.spec["from"]]) or {}
        return {
            "/".join(labels): sum(schedule.is_settled(o, self.retry_failed) for o in group)
            for labels, group in runs.items()
        }

    def report(self, everything: dict[str, Question], records: Path, out: Path):
        reporting.report_derived(self, everything, out / self.name)


class Computation(Question):
    """A deterministic table, recomputed by every report (no runs)."""

    kind = "computation"

    def plan_rows(self) -> list[tuple[str, int, float]]:
        return [("computed by `report`", 0, 0.0)]

    def pending(self, everything: dict[str, Question]) -> list[list[str]]:
        return []

    def settled_counts(self, everything: dict[str, Question]) -> dict[str, int]:
        return {}

    def report(self, everything: dict[str, Question], records: Path, out: Path):
        reporting.report_computation(self, out / self.name)


KINDS = {cls.kind: cls for cls in (Comparison, Derived, Computation)}


def make_question(name: str, spec: dict, runs: Path) -> Question:
    """The question of a design entry, as the class of its ``kind`` (default: comparison)."""
    return KINDS[spec.get("kind", "comparison")](name, spec, runs)


def make_questions(design: dict, runs: Path) -> dict[str, Question]:
    return {name: make_question(name, spec, runs) for name, spec in design.items()}
