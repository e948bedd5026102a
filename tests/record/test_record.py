"""The run-record contract: hashing, atomic writes, the lock, reading with named problems."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys

import pytest

from rootfree.record import (
    SCHEMA,
    DiskFull,
    RunDir,
    RunLock,
    config_hash,
    hash_matches,
    is_locked,
    parse_metrics,
    read_run,
    setting_id,
)
from rootfree.record import files as record_files
from tests.train.helpers import compose_config


def test_keys_that_cannot_change_results_leave_the_hash_alone():
    base = compose_config("experiment=smoke")
    same = compose_config(
        "experiment=smoke",
        "trainer.progress=true",
        "trainer.log_every=3",
        "trainer.checkpoint_every_steps=7",
        "trainer.device=cpu",
        "paths.runs=/elsewhere",
    )
    assert config_hash(same) == config_hash(base)
    for semantic in ("seed=1", "optimizer.lr=0.5", "trainer.epochs=3", "trainer.amp=bf16"):
        assert config_hash(compose_config("experiment=smoke", semantic)) != config_hash(base)
    assert setting_id(compose_config("experiment=smoke", "seed=1")) == setting_id(base)


def test_a_config_edited_after_its_run_no_longer_matches_its_hash():
    config = compose_config("experiment=smoke")
    stored = config_hash(config)
    assert hash_matches(config, stored, schema=SCHEMA)
    config["optimizer"]["lr"] *= 10
    assert not hash_matches(config, stored, schema=SCHEMA)


def test_moved_data_and_the_save_interval_leave_the_hash_alone():
    base = compose_config("dataset=cifar10", "dataset.root=/a")
    moved = compose_config(
        "dataset=cifar10", "dataset.root=/b", "trainer.checkpoint_every_minutes=1"
    )
    assert config_hash(moved) == config_hash(base)
    assert config_hash(compose_config("dataset=cifar10", "dataset.split_seed=1")) != (
        config_hash(base)
    )


def _schema_2_name(config: dict) -> str:
    """How schema 2 named a run, written out independently: the config less its excluded keys
    and its nulls, as sorted compact JSON, sha256, 12 hex digits."""
    import hashlib

    def strip(node):
        return (
            {k: strip(v) for k, v in node.items() if v is not None}
            if isinstance(node, dict)
            else node
        )

    kept = {k: v for k, v in config.items() if k not in ("hydra", "paths", "logger", "tuning")}
    kept["trainer"] = {
        k: v
        for k, v in kept["trainer"].items()
        if k not in ("progress", "log_every", "checkpoint_every_steps", "device")
    }
    text = json.dumps(strip(kept), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def test_schema_2_records_named_with_their_data_path_stay_sound():
    config = compose_config("dataset=cifar10", "dataset.root=/data")
    del config["trainer"]["checkpoint_every_minutes"]  # schema 2 configs never had it
    assert hash_matches(config, _schema_2_name(config), schema=2)
    assert not hash_matches(config, _schema_2_name(config), schema=3)


def test_metrics_problems_are_named_by_line():
    rows = [{"epoch": e, "val_acc": 0.5} for e in (1, 2, 3)]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    assert parse_metrics(text) == (rows, [])
    torn = text.replace('{"epoch": 2', '{"epo', 1)
    assert parse_metrics(torn)[1] == [
        "metrics.jsonl line 2 is torn",
        "metrics.jsonl lacks epochs [2]",
    ]
    repeated = text + json.dumps(rows[2]) + "\n"
    assert parse_metrics(repeated)[1] == ["metrics.jsonl repeats epochs [3]"]


class FullDisk:
    """A file whose writes store half their bytes, then fail as a full disk does."""

    def __init__(self, path, mode):
        self.file = open(path, mode)  # noqa: SIM115

    def write(self, data):
        self.file.write(data[: len(data) // 2])
        self.file.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def test_a_full_disk_raises_disk_full_and_leaves_files_as_they_were(tmp_path, monkeypatch):
    run_dir = RunDir(tmp_path)
    run_dir.set_status("running")
    run_dir.append_metrics({"epoch": 1})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr(record_files, "open", FullDisk, raising=False)
    with pytest.raises(DiskFull, match="no space left on the device writing .*status.json"):
        run_dir.set_status("done")
    with pytest.raises(DiskFull, match="metrics.jsonl"):
        run_dir.append_metrics({"epoch": 2})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_lock_is_exclusive_and_dies_with_its_process(tmp_path):
    first, second = RunLock(tmp_path), RunLock(tmp_path)
    assert first.acquire() and not second.acquire() and is_locked(tmp_path)
    first.release()
    assert not is_locked(tmp_path) and second.acquire()
    second.release()

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from rootfree.record import RunLock;"
            f"assert RunLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    assert is_locked(tmp_path) and not RunLock(tmp_path).acquire()
    assert RunLock(tmp_path).holder()["pid"] == holder.pid
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert not is_locked(tmp_path) and RunLock(tmp_path).acquire()


def test_a_running_status_without_a_live_lock_reads_as_stale(tmp_path):
    config = compose_config("experiment=smoke")
    run_dir = RunDir(tmp_path)
    (tmp_path / "config.yaml").write_text(json.dumps(config))
    run_dir.set_status("running", run_hash=config_hash(config))
    assert read_run(tmp_path).state == "stale"
    with run_dir.lock:
        assert run_dir.lock.acquire()
        assert read_run(tmp_path).state == "running"


def test_a_launch_under_other_code_is_appended_and_warned_about(tmp_path, monkeypatch, caplog):
    run_dir = RunDir(tmp_path)
    version = {"git_commit": "a" * 40, "git_dirty": False, "git_diff_sha": None}
    monkeypatch.setattr("rootfree.record.provenance.code_version", lambda: dict(version))
    assert run_dir.record_launch(dataset_checksum="x") == {}
    version["git_commit"] = "b" * 40
    changes = run_dir.record_launch(dataset_checksum="x")
    assert changes == {"git_commit": ("a" * 40, "b" * 40)}
    assert "resumes under other code" in caplog.text
    launches = json.loads((tmp_path / "provenance.json").read_text())["launches"]
    assert [launch["git_commit"] for launch in launches] == ["a" * 40, "b" * 40]


def test_untracked_files_make_the_tree_dirty(tmp_path, monkeypatch):
    from rootfree.record import provenance

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(
        ["git", "-C", str(tmp_path), "commit", "-q", "--allow-empty", "-m", "x"],
        check=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
        },
    )
    monkeypatch.setattr(provenance, "REPO", tmp_path)
    assert provenance.code_version()["git_dirty"] is False
    (tmp_path / "results" / "study").mkdir(parents=True)
    (tmp_path / "results" / "study" / "table.md").write_text("| a |\n")
    assert provenance.code_version()["git_dirty"] is False, "the study's own tables are not code"
    (tmp_path / "new.py").write_text("x = 1\n")
    assert provenance.code_version()["git_dirty"] is True


def test_the_run_status_owns_what_is_final_and_what_is_settled():
    from rootfree.record import STATUSES, RunStatus

    assert [s for s in RunStatus if s.final] == [RunStatus.DONE, RunStatus.DIVERGED]
    assert RunStatus.FAILED.settled() and not RunStatus.FAILED.settled(retry_failed=True)
    assert not any(RunStatus(s).settled() for s in ("running", "interrupted", "stale"))
    assert "stale" not in STATUSES and "unreadable" not in STATUSES, "inferred, never written"


def test_a_config_reads_as_omegaconf_reads_it(tmp_path):
    from omegaconf import OmegaConf

    from rootfree.record.reader import _load_config

    text = (
        "optimizer:\n  lr: 1e-3\n  lr_cov: 5.0e-05\n  betas: [0.9, 0.999]\n  dtype: null\n"
        "  name: '1e-3'\n  on: true\nwhen: 2026-12-06\nsteps: 10\nratio: .5\nbig: 1_000\n"
    )
    path = tmp_path / "config.yaml"
    path.write_text(text)
    theirs = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    assert repr(_load_config(path)) == repr(theirs)
    assert isinstance(_load_config(path)["optimizer"]["lr"], float)
