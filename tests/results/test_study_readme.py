"""Every number in results/study/README.md's findings is in a table `make tables` rebuilds from
the committed records (test_committed_tables checks that rebuild), as written or in percent,
and in a table that the finding cites: a number read off another question's table is caught."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from tests.train.helpers import ROOT

STUDY = ROOT / "results" / "study"
CLAIMED = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")  # decimals in prose: measured values
TABLED = re.compile(r"\d*\.?\d+(?:[eE][-+]?\d+)?")
QUOTED = re.compile(r"`([^`]+)`")


def findings(readme: str) -> str:
    """The README's sections whose title starts with "Findings"."""
    sections = re.split(r"\n(?=## )", readme)
    return "\n".join(s for s in sections if s.startswith("## Findings"))


def items(text: str) -> list[str]:
    """The top-level items of a section (nested lines stay with theirs), the text before the
    first one included."""
    return re.split(r"\n(?=- )", text)


def cited(item: str, tables: Path) -> set[Path]:
    """The question folders (and top-level tables) an item names in backticks, e.g.
    `p2_vit/comparison.md` or `bf16_state`, line breaks inside the quotes ignored."""
    paths = set()
    for quoted in QUOTED.findall(item):
        name = re.sub(r"\s+", "", quoted)
        folder = tables / name.split("/")[0]
        if folder.is_dir() and folder.name != "runs":
            paths.add(folder)
        elif (tables / name).is_file() and "/" not in name:
            paths.add(tables / name)
    return paths


@functools.cache
def tabled_values(path: Path) -> frozenset[float]:
    """Every number in a folder's (or one file's) .md and .csv tables."""
    files = [path] if path.is_file() else sorted(path.rglob("*"))
    return frozenset(
        float(token)
        for file in files
        if file.suffix in (".md", ".csv") and file.name != "README.md"
        for token in TABLED.findall(file.read_text())
    )


def unsupported(readme: str, tables: Path) -> list[str]:
    """Decimals of the findings that no table the same item cites rounds to, as a fraction or
    in percent."""
    missing = []
    for item in items(findings(readme)):
        values = set().union(*(tabled_values(p) for p in cited(item, tables)))
        for token in CLAIMED.findall(item):
            digits, claimed = len(token.split(".")[1]), float(token)
            if not any(
                round(v, digits) == claimed or round(100 * v, digits) == claimed for v in values
            ):
                missing.append(token)
    return missing


def test_every_number_in_the_study_findings_comes_from_a_table_it_cites():
    readme = (STUDY / "README.md").read_text()
    assert "84.07" in findings(readme), "the findings section is where the numbers are"
    assert unsupported(readme, STUDY) == []


def test_a_number_no_table_has_is_caught():
    readme = (STUDY / "README.md").read_text()
    invented = readme.replace(
        "## Findings\n", "## Findings\n\n- SGD 97.31% (`p1_cnn/comparison.md`).\n"
    )
    assert unsupported(invented, STUDY) == ["97.31", *unsupported(readme, STUDY)]


def test_a_number_from_a_table_the_finding_does_not_cite_is_caught():
    readme = (STUDY / "README.md").read_text()
    elsewhere = tabled_values(STUDY / "p2_vit")
    number = next(
        f"{100 * v:.2f}"
        for v in sorted(tabled_values(STUDY / "p1_cnn" / "comparison.csv"))
        if 0.5 < v < 1 and not any(round(100 * w, 2) == round(100 * v, 2) for w in elsewhere)
    )
    borrowed = f"- AdamW {number}% (`p2_vit/comparison.md`).\n"
    assert unsupported(readme.replace("## Findings\n", f"## Findings\n\n{borrowed}"), STUDY) == [
        number
    ]
    cited_right = borrowed.replace("p2_vit", "p1_cnn")
    assert (
        unsupported(readme.replace("## Findings\n", f"## Findings\n\n{cited_right}"), STUDY) == []
    )
