"""docs/hyperparameters.md's generated tables, from the registry: where each paper name lands
among a method's arguments, and each method's family, defaults and stage-1 search space.

``python -m rootfree.catalogue [FILE]`` rewrites the blocks between the markers
``<!-- generated: NAME -->`` and ``<!-- end generated -->``; a test keeps the file in step.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from rootfree.optim import OPTIMIZERS
from rootfree.optim.spec import FAMILIES, PAPER_HPARAMS, OptimizerSpec, PaperName

DOC = Path(__file__).resolve().parents[1] / "docs" / "hyperparameters.md"
BLOCK = re.compile(r"(<!-- generated: (\w+) -->\n).*?(<!-- end generated -->)", re.DOTALL)


def _cell(paper: str, where: PaperName | None) -> str:
    if where is None:
        return ""
    argument = f"`{where.argument}" + (f"[{where.index}]`" if where.index is not None else "`")
    return f"{argument} = 1 - {paper}" if where.complement else argument


def arguments_table() -> str:
    """Optimizer x paper name: the argument each paper value lands in."""
    lines = ["| optimizer | " + " | ".join(PAPER_HPARAMS) + " |", "|---" * 7 + "|"]
    for spec in OPTIMIZERS.values():
        cells = [_cell(p, spec.paper_names.get(p)) for p in PAPER_HPARAMS]
        lines.append(f"| {spec.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _space(spec: OptimizerSpec) -> str:
    return ", ".join(
        f"{key} {r.low:g}..{r.high:g}" + ("" if r.log else " (uniform)")
        for key, r in spec.search.items()
    )


def methods_table() -> str:
    """Per method: family, root-free counterpart, provider, defaults and stage-1 space."""
    lines = [
        "| optimizer | family | root-free (counterpart) | provider | defaults | stage-1 space |",
        "|---|---|---|---|---|---|",
    ]
    for spec in OPTIMIZERS.values():
        free = (
            f"yes ({spec.counterpart})"
            if spec.root_free and spec.counterpart
            else ("yes" if spec.root_free else "no")
        )
        defaults = ", ".join(f"{k} {v}" for k, v in spec.defaults.items() if v is not None)
        lines.append(
            f"| {spec.name} | {spec.family} | {free} | {spec.provider} | {defaults} | "
            f"{_space(spec)} |"
        )
    return "\n".join(lines) + "\n"


def notes() -> str:
    """Each method's description and where its defaults and ranges come from."""
    return "".join(f"- `{s.name}`: {s.description}. {s.notes}\n" for s in OPTIMIZERS.values())


def families() -> str:
    return "".join(f"- `{name}`: {meaning}\n" for name, meaning in FAMILIES.items())


GENERATORS = {
    "arguments": arguments_table,
    "methods": methods_table,
    "notes": notes,
    "families": families,
}


def render(text: str) -> str:
    """``text`` with every generated block rebuilt from the registry."""
    return BLOCK.sub(lambda m: m[1] + GENERATORS[m[2]]() + m[3], text)


def main(argv: list[str] | None = None) -> int:
    path = Path((argv or sys.argv[1:] or [DOC])[0])
    path.write_text(render(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
