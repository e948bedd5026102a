"""The config groups a user picks from (``optimizer=...``), their options, and a check of the
command line's group choices before Hydra composes, so a typo gets one line with the nearest
option instead of Hydra's listing."""

from __future__ import annotations

import difflib
import re

from rootfree.config_paths import config_dirs

GROUPS = ("dataset", "model", "optimizer", "trainer", "logger", "experiment", "tuning")
# a plain choice or a comma-separated sweep of them; anything fancier is Hydra's to parse
_PLAIN = re.compile(r"^[\w.-]+(,[\w.-]+)*$")


def group_options(group: str) -> list[str]:
    """The options of a config group, from every config folder in use (and, for optimizers,
    the registry, whose specs make their configs)."""
    files = {p.stem for root in config_dirs() for p in (root / group).glob("*.yaml")}
    if group == "optimizer":
        from rootfree.optim import OPTIMIZERS  # torch: only where optimizers are asked for

        files |= set(OPTIMIZERS)
    return sorted(files)


def did_you_mean(value: str, choices: list[str]) -> str:
    """'; did you mean 'x'?' for the closest choice, or ''."""
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_group_choices(argv: list[str]) -> str | None:
    """The first ``group=option`` argument naming an option the group lacks, as one line;
    None when every plain choice exists."""
    for argument in argv:
        key, sep, value = argument.lstrip("+~").partition("=")
        if not sep or key not in GROUPS or not _PLAIN.match(value):
            continue
        options = group_options(key)
        for option in value.split(","):
            if option not in options and option != "null":
                return f"Invalid {key}: {option!r}; choose one of {options}" + did_you_mean(
                    option, options
                )
    return None
