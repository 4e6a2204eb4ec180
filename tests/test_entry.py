"""The one training entry (`s2v_jax.train.entry`): run_train.py and `s2v train-sync` parse the same
flags with the same parser, and report a bad config on one line naming what was wrong."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_both_spellings_of_an_override_parse_to_the_same_config():
    from s2v_jax.train import entry

    base = ["prog", "--config", os.path.join(REPO, "configs", "syncnet.py"), "--workdir", "/tmp/x"]
    a = entry.parse(base + ["--config.train.num_steps=7", "--config.data.augment_shift_px=3"])
    a = (a.train.num_steps, a.data.augment_shift_px, a.train.learning_rate)
    flags_ = entry.override_flags(["train.num_steps=7", "config.data.augment_shift_px=3"])
    assert flags_ == ["--config.train.num_steps=7", "--config.data.augment_shift_px=3"]
    b = entry.parse(base + flags_)
    assert (b.train.num_steps, b.data.augment_shift_px, b.train.learning_rate) == a
    assert a[:2] == (7, 3)


@pytest.mark.parametrize("override, message", [
    ("--config.train.nope=1", "unknown config field 'train.nope'"),
    ("--config.train.num_steps=abc", "num_steps"),
])
def test_a_bad_override_is_one_clear_error(override, message):
    from s2v_jax.errors import ConfigError
    from s2v_jax.train import entry

    with pytest.raises(ConfigError, match=message):
        entry.parse(["prog", "--config", os.path.join(REPO, "configs", "tiny.py"), "--workdir", "/tmp/x", override])
    with pytest.raises(ConfigError, match="not of the form"):
        entry.override_flags(["train.num_steps"])


def test_run_train_and_train_sync_refuse_alike(tmp_path):
    """The script and the subcommand: exit 2, one line, the field named; train-sync refuses another task."""
    cfg = os.path.join(REPO, "configs", "syncnet.py")
    r = subprocess.run([sys.executable, os.path.join(REPO, "run_train.py"), "--config", cfg, "--workdir",
                        str(tmp_path), "--config.model.nope=1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "unknown config field 'model.nope'" in r.stderr, r.stderr[-500:]
    from s2v_jax.cli import main

    assert main(["train-sync", "--config", cfg, "--workdir", str(tmp_path), "model.nope=1"]) == 2
    assert main(["train-sync", "--config", os.path.join(REPO, "configs", "tiny.py"), "--workdir",
                 str(tmp_path)]) == 2
