"""The one recipe that names a run: a hash of the config keys that can change its result.

Excluded (they cannot change what a run computes): where things are written (``paths``), how it
is watched (``logger``, ``trainer.progress``, ``trainer.log_every``), how often it is saved
(``trainer.checkpoint_every_steps`` and ``_minutes``; a resumed run continues bitwise), which
device it ran on (``trainer.device``; recorded in the provenance instead), where the data sits
(``dataset.root``; the data is identified by its checksum in the provenance, so moving it keeps
the run's name), and the launcher's own settings (``hydra``, ``tuning``). Everything else, the
seed included, is part of the hash, except keys set to null: an option added later with a null
default leaves earlier runs' names unchanged.

A run's *budget* (``budget_id``) is the same hash without the optimizer and the seed: the
experiment a comparison cell holds fixed while the optimizer's settings and the seed vary.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from typing import Any

SCHEMA = 3
HASH_EXCLUDED = (
    "hydra",
    "paths",
    "logger",
    "tuning",
    "trainer.progress",
    "trainer.log_every",
    "trainer.checkpoint_every_steps",
    "trainer.device",
    "dataset.root",
    "trainer.checkpoint_every_minutes",
)
# Schema 1 records were named by one of two top-level-only recipes, schema 2 ones by the list
# above up to trainer.device (the keys after it were added by schema 3).
_RECIPES = {
    1: (("hydra", "paths", "logger", "tuning"), ("hydra", "paths", "logger")),
    2: (HASH_EXCLUDED[: HASH_EXCLUDED.index("trainer.device") + 1],),
    3: (HASH_EXCLUDED,),
}
BUDGET_EXCLUDED = ("seed", "optimizer")
DTYPE_KEYS = ("optimizer.state_dtype", "optimizer.preconditioner_dtype")


def without_keys(config: dict[str, Any], dotted: Iterable[str]) -> dict[str, Any]:
    """A copy of ``config`` without the given dotted keys (``trainer.progress``)."""
    out = copy.deepcopy(config)
    for key in dotted:
        *parents, leaf = key.split(".")
        node = out
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return out


def _without_nulls(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_nulls(v) for k, v in node.items() if v is not None}
    return node


def _digest(config: dict[str, Any], drop_nulls: bool = True) -> str:
    if drop_nulls:
        config = _without_nulls(config)
    canonical = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def config_hash(config: dict[str, Any]) -> str:
    """The run directory name of a resolved config."""
    return _digest(without_keys(config, HASH_EXCLUDED))


def hash_matches(config: dict[str, Any], stored: str, schema: int) -> bool:
    """Whether ``stored`` names ``config`` by a recipe of record ``schema`` (old records stay
    readable); False for a config edited after its run was named."""
    if schema not in _RECIPES:
        raise ValueError(f"Unknown run-record schema: {schema!r}; known: {sorted(_RECIPES)}")
    return any(
        _digest(without_keys(config, excluded), drop_nulls=schema >= 2) == stored
        for excluded in _RECIPES[schema]
    )


def setting_id(config: dict[str, Any], ignore_dtype: bool = False) -> str:
    """The run's hyperparameter setting: its hash without the seed, so seeds of a setting share it.

    ``ignore_dtype`` also drops the optimizer's state/preconditioner dtype, pairing the fp32 and
    bf16 twins of one setting.
    """
    extra = ("seed", *(DTYPE_KEYS if ignore_dtype else ()))
    return config_hash(without_keys(config, extra))


def budget_id(config: dict[str, Any]) -> str:
    """The run's budget: everything that defines its experiment (data, subset, model, epochs or
    steps, batch size, schedule, ...), so runs that differ only in the optimizer and the seed
    share it and nothing else does."""
    return config_hash(without_keys(config, BUDGET_EXCLUDED))
