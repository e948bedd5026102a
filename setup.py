"""Ships conf/ and experiments/ inside the wheel as rootfree/_configs/ (rootfree.config_paths
finds them there), so the console commands work from any directory. Everything else is in
pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONFIG_FOLDERS = ("conf", "experiments")


class BuildWithConfigs(build_py):
    def run(self) -> None:
        super().run()
        configs = Path(self.build_lib) / "rootfree" / "_configs"
        shutil.rmtree(configs, ignore_errors=True)  # nothing stale from an earlier build
        for name in CONFIG_FOLDERS:
            shutil.copytree(name, configs / name, ignore=shutil.ignore_patterns("*.pyc"))


setup(cmdclass={"build_py": BuildWithConfigs})
