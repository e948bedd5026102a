"""Every number in results/study/README.md's findings is in a table `make tables` rebuilds from
the committed records (test_committed_tables checks that rebuild), as written or in percent."""

from __future__ import annotations

import re
from pathlib import Path

from tests.train.helpers import ROOT

STUDY = ROOT / "results" / "study"
CLAIMED = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")  # decimals in prose: measured values
TABLED = re.compile(r"\d*\.?\d+(?:[eE][-+]?\d+)?")


def findings(readme: str) -> str:
    """The README's sections whose title starts with "Findings"."""
    sections = re.split(r"\n(?=## )", readme)
    return "\n".join(s for s in sections if s.startswith("## Findings"))


def tabled_values(tables: Path) -> set[float]:
    values = set()
    for path in tables.rglob("*"):
        if path.suffix in (".md", ".csv") and path.name != "README.md":
            if "runs" not in path.relative_to(tables).parts:
                values |= {float(token) for token in TABLED.findall(path.read_text())}
    return values


def unsupported(readme: str, tables: Path) -> list[str]:
    """Decimals of the findings that no table value rounds to, as a fraction or in percent."""
    values = tabled_values(tables)
    missing = []
    for token in CLAIMED.findall(findings(readme)):
        digits, claimed = len(token.split(".")[1]), float(token)
        if not any(
            round(v, digits) == claimed or round(100 * v, digits) == claimed for v in values
        ):
            missing.append(token)
    return missing


def test_every_number_in_the_study_findings_comes_from_a_rebuilt_table():
    readme = (STUDY / "README.md").read_text()
    assert "84.07" in findings(readme), "the findings section is where the numbers are"
    assert unsupported(readme, STUDY) == []


def test_a_number_no_table_has_is_caught():
    readme = (STUDY / "README.md").read_text()
    invented = readme.replace("## Findings\n", "## Findings\n\nSGD 97.31%.\n")
    assert unsupported(invented, STUDY) == ["97.31"]
