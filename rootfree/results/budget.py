"""A comparison cell's budget in words: the config keys that set two budgets apart, and the
overrides that recreate one, so a table names what differs and a hint reruns the same cell."""

from __future__ import annotations

from typing import Any

from rootfree.record.hashing import BUDGET_EXCLUDED, HASH_EXCLUDED, without_keys


def flatten(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"trainer": {"epochs": 1}}`` -> ``{"trainer.epochs": 1}``; lists stay values."""
    out = {}
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{dotted}."))
        else:
            out[dotted] = value
    return out


def budget_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The keys a budget is made of, flat: the run's config without the optimizer, the seed and
    what the run hash leaves out."""
    return flatten(without_keys(config, (*HASH_EXCLUDED, *BUDGET_EXCLUDED)))


def _value(value: Any) -> str:
    """A value as a Hydra override writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(map(_value, value)) + "]"
    return str(value)


def budget_labels(settings: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Per budget (``settings``: budget id -> ``budget_settings``) the keys whose values differ
    among the given budgets, as ``key=value`` text; '' when there is one budget."""
    keys = sorted({key for flat in settings.values() for key in flat})
    differing = [k for k in keys if len({_value(f.get(k)) for f in settings.values()}) > 1]
    return {
        budget: ", ".join(f"{k}={_value(flat.get(k))}" for k in differing)
        for budget, flat in settings.items()
    }


def budget_overrides(settings: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    """Overrides that turn the ``defaults`` config into a run's budget (both flat): what a
    command must add to rerun a cell under the same budget. A key the defaults lack gets +."""
    out = []
    for key, value in settings.items():
        if key not in defaults:
            out.append(f"+{key}={_value(value)}")
        elif _value(defaults[key]) != _value(value):
            out.append(f"{key}={_value(value)}")
    return out


def rerun_overrides(settings: dict[str, Any]) -> list[str]:
    """Train overrides that recreate a budget (``budget_settings``): its dataset and model
    groups, then every key where the budget differs from those groups' defaults."""
    from hydra.errors import MissingConfigException

    from rootfree.compose import compose_overrides

    groups = [f"dataset={settings['dataset.name']}", f"model={settings['model.name']}"]
    try:
        defaults = budget_settings(compose_overrides(groups))
    except MissingConfigException:  # a model or dataset named other than its config group
        groups, defaults = [], budget_settings(compose_overrides([]))
    return groups + budget_overrides(settings, defaults)
