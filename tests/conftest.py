"""Suite-wide guard: tests write under tmp_path, never into the repository's committed results."""

from __future__ import annotations

from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[1] / "results"


def snapshot() -> dict[str, int]:
    return {
        str(p.relative_to(RESULTS)): p.stat().st_mtime_ns for p in RESULTS.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="session", autouse=True)
def results_stay_untouched():
    before = snapshot()
    yield
    after = snapshot()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"tests wrote into results/: {changed[:5]}"
