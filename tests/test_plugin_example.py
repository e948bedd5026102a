"""examples/optimizer_plugin, installed as a user would, beside a rootfree wheel in a fresh
environment: its optimizer trains, is searched, enters a study design and the tables, with no
edit to rootfree (and rootfree's own code never names it)."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from tests.venvs import ROOT, build_wheel, fresh_venv

EXAMPLE = ROOT / "examples" / "optimizer_plugin"
DESIGN = {
    "questions": {
        "mine": {
            "title": "Lion against SGD on the smoke setup",
            "overrides": ["experiment=smoke"],
            "optimizers": ["sgd", "lion"],
            "trials": [2, 1],
            "top": 0.5,
            "margin": 1.0,
            "seeds": 2,
            "checks": ["seeds"],
            "minutes": {"default": 0.1},
        }
    }
}


def test_rootfree_never_names_the_example_optimizer():
    for path in (ROOT / "rootfree").rglob("*.py"):
        assert "lion" not in path.read_text().lower(), path


@pytest.mark.slow
def test_the_example_plugin_trains_searches_plans_and_tabulates(tmp_path):
    python = fresh_venv(tmp_path / "venv")
    wheels = [build_wheel(tmp_path / "rootfree"), build_wheel(tmp_path / "plugin", EXAMPLE)]
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", *map(str, wheels)], check=True
    )
    env = {**os.environ, "PATH": f"{python.parent}:{os.environ['PATH']}", "PYTHONPATH": ""}
    work = tmp_path / "work"
    work.mkdir()

    def run(*command: str) -> str:
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    assert "lion (plug-in from rootfree-lion)" in run("rootfree-train", "--help")
    assert "test accuracy" in run("rootfree-train", "experiment=smoke", "optimizer=lion")
    sweep = run(
        "rootfree-train", "-m", "tuning=random", "experiment=smoke", "optimizer=lion",
        "hydra.sweeper.n_trials=2", "paths.runs=sweep",
    )  # fmt: skip
    lrs = [
        yaml.safe_load(p.read_text())["optimizer"]["lr"] for p in work.glob("sweep/*/config.yaml")
    ]
    assert len(lrs) == 2 and all(1e-5 <= lr <= 1e-2 for lr in lrs), (lrs, sweep)
    design = tmp_path / "design.yaml"
    design.write_text(yaml.safe_dump(DESIGN))
    plan = run("rootfree-study", "plan", "--design", str(design), "--out", "nothing")
    assert "lion" in plan and "0 settled" in plan
    run("rootfree-results", "sweep", "--out", "tables")
    table = (work / "tables" / "comparison.md").read_text()
    assert "lion" in table
    run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests"))
