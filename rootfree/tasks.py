"""What a run is trained to do, and how its results are read: each task's metrics, the one that
selection ranks on, and which way is better. The trainer, the results module and the study all
ask this module; a dataset's kind decides its task."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from rootfree.data.text_registry import TEXT_DATASETS


@dataclass(frozen=True)
class Metric:
    name: str  # the suffix of its columns: val_<name>, test_<name>
    higher_is_better: bool
    description: str
    label: str = ""  # how a sentence names it: "accuracy"
    percent: bool = False  # tables print it times 100, in %

    def signed(self, value):
        """``value`` (a number or a pandas column) signed so that higher is better."""
        return value if self.higher_is_better else -value

    @property
    def unit(self) -> str:
        """What a table's numbers of it are in: "%" or "nats per token"."""
        return "%" if self.percent else "nats per token"


ACCURACY = Metric(
    "acc", True, "accuracy (next-token accuracy for a language model)", "accuracy", True
)
LOSS = Metric("loss", False, "mean cross-entropy per target, in nats", "loss")
PERPLEXITY = Metric("ppl", False, "perplexity: exp of the loss per token")
BITS_PER_CHARACTER = Metric("bpc", False, "bits per character: the loss per character / ln 2")


@dataclass(frozen=True)
class Task:
    name: str
    metrics: tuple[Metric, ...]
    primary: Metric  # what selection, validity and the study rank on
    description: str
    unit: str  # what throughput counts: images, tokens

    def metric(self, name: str) -> Metric:
        """The metric of this task called ``name``; a one-line error names the valid ones."""
        for metric in self.metrics:
            if metric.name == name:
                return metric
        names = [m.name for m in self.metrics]
        raise ValueError(f"Invalid metric: {name!r}; the {self.name} task has {names}")

    def score(self, row: Mapping[str, float], split: str = "val") -> float:
        """The primary metric of ``split`` in ``row``, signed so that higher is better."""
        return self.primary.signed(row[f"{split}_{self.primary.name}"])


CLASSIFICATION = Task(
    "classification",
    (ACCURACY, LOSS),
    ACCURACY,
    "image classification, selected on accuracy",
    "images",
)
LANGUAGE_MODEL = Task(
    "language_model",
    (LOSS, PERPLEXITY, BITS_PER_CHARACTER, ACCURACY),
    LOSS,
    "next-token prediction, selected on validation loss (perplexity and bpc rank alike)",
    "tokens",
)
TASKS: dict[str, Task] = {task.name: task for task in (CLASSIFICATION, LANGUAGE_MODEL)}


def derived_metrics(row: Mapping[str, float], level: str) -> dict[str, float]:
    """Perplexity of every ``<split>_loss`` in ``row``, and bits per character where the
    tokens are characters (``level == "char"``); inf where the loss overflows exp. Nothing
    for images (``level == "image"``)."""
    derived = {}
    if level == "image":
        return derived
    for key, loss in row.items():
        if not key.endswith("_loss") or key.endswith("running_loss"):
            continue
        split = key[: -len("_loss")]
        derived[f"{split}_ppl"] = math.exp(loss) if loss < 700 else math.inf
        if level == "char":
            derived[f"{split}_bpc"] = loss / math.log(2)
    return derived


def task_for(dataset: str) -> Task:
    """The task of ``dataset.name``: language modelling for a text corpus, else classification."""
    return LANGUAGE_MODEL if dataset in TEXT_DATASETS else CLASSIFICATION
