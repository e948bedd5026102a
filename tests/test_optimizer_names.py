"""No list of optimizer names outside the specs and the designs: everything else iterates the
registry, so a new method (in-tree or plug-in) reaches the app, the study, the tables and the
bench without an edit."""

from __future__ import annotations

import ast
from pathlib import Path

from rootfree.optim import OPTIMIZERS

ROOT = Path(__file__).parents[1]
# Designs: which methods the authors' scripts ran on which setup, and which the committed
# results/paper_small ran.
DESIGNS = {"rootfree/paper_experiments.py", "scripts/paper_small.py"}


def name_lists(source: str) -> list[tuple[int, list[str]]]:
    """(line, names) of each list, tuple, set or dict-key collection of two or more string
    literals that are all registered optimizer names."""
    found = []
    for node in ast.walk(ast.parse(source)):
        elements = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
        if not isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)) or not elements:
            continue
        names = [e.value for e in elements if isinstance(e, ast.Constant)]
        if len(names) >= 2 and len(names) == len(elements) and set(names) <= set(OPTIMIZERS):
            found.append((node.lineno, names))
    return found


def test_the_finder_sees_a_hard_coded_list():
    assert name_lists("BENCH = ('sgd', 'adamw')\nOTHER = ('sgd', 'x')") == [(1, ["sgd", "adamw"])]


def test_no_code_lists_optimizer_names_outside_the_specs_and_designs():
    offenders = []
    for folder in ("rootfree", "scripts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            if relative in DESIGNS:
                continue
            offenders += [
                f"{relative}:{line} {names}" for line, names in name_lists(path.read_text())
            ]
    assert offenders == []
