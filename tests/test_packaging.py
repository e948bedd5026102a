"""What a `pip install` gives: the optimizers on torch alone, and with [train] the console
commands, configs included, working from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest

from tests.venvs import build_wheel, fresh_venv

ROOT = Path(__file__).parents[1]
FRAMEWORK_ONLY = (
    "torchvision",
    "timm",
    "hydra",
    "omegaconf",
    "pandas",
    "scipy",
    "wandb",
    "matplotlib",
    "yaml",
    "tabulate",
)


def test_the_optimizers_import_nothing_but_torch():
    code = (
        "import sys, rootfree.optim; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FRAMEWORK_ONLY!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_wheel_trains_and_tabulates_from_an_empty_directory(tmp_path):
    wheel = build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "rootfree/_configs/conf/config.yaml" in names
    assert any(n.startswith("rootfree/_configs/experiments/best/") for n in names)
    required = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert [r for r in required if "extra ==" not in r] == ["Requires-Dist: torch>=2.4"]

    python = fresh_venv(tmp_path / "venv")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    work = tmp_path / "empty"
    work.mkdir()
    bin_dir = python.parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": ""}
    where = subprocess.run(
        [str(python), "-c", "import rootfree; print(rootfree.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(tmp_path / "venv") in where, "the wheel's rootfree, not the checkout's"
    paper = subprocess.run(
        [
            str(bin_dir / "rootfree-train"),
            "experiment=paper_cifar100_resnet34",
            "optimizer=rootfree_rmsprop",
            "--cfg",
            "job",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert paper.returncode == 0, paper.stderr[-2000:]
    assert "lr: 0.00498" in paper.stdout, "the paper's experiments and best files ship too"
    run = subprocess.run(
        [str(bin_dir / "rootfree-train"), "experiment=smoke"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(list((work / "runs").glob("*/metrics.jsonl"))) == 1
    results = subprocess.run(
        [str(bin_dir / "rootfree-results"), "runs", "--out", "tables"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert results.returncode == 0, results.stderr[-2000:]
    assert (work / "tables" / "comparison.md").exists()
    plan = subprocess.run(
        [str(bin_dir / "rootfree-study"), "plan"], cwd=work, env=env, capture_output=True, text=True
    )
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "p1_cnn" in plan.stdout and "CPU hours" in plan.stdout, "the study's design ships too"


def test_the_search_path_plugin_touches_only_rootfrees_app(tmp_path):
    from hydra._internal.config_search_path_impl import ConfigSearchPathImpl

    from hydra_plugins.rootfree_experiments import RootfreeExperimentsSearchPath
    from rootfree.config_paths import config_dir

    def providers(primary: str) -> list[str]:
        search_path = ConfigSearchPathImpl()
        search_path.append("main", primary)
        RootfreeExperimentsSearchPath().manipulate_search_path(search_path)
        return [element.provider for element in search_path.get_path()]

    assert providers(f"file://{tmp_path}") == ["main"]
    assert providers(f"file://{config_dir('conf')}") == ["main", "rootfree-experiments"]


def test_the_package_metadata_raises_no_setuptools_deprecation():
    """setuptools reads pyproject.toml without a warning (a TOML-table license was one)."""
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        distribution = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert [str(w.message).splitlines()[0] for w in caught] == []
    assert distribution.metadata.license_expression == "MIT"
