"""`s2v model-summary` and config loading from the command line."""

import json
import os
import subprocess
import sys

import pytest

from s2v_jax.cli import main
from s2v_jax.config_utils import apply_override, load_config
from s2v_jax.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _summary(capsys, *args):
    assert main(["model-summary", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_default_summary_json(capsys):
    s = _summary(capsys, "--config", "configs/default.py")
    assert s["output_shape"] == [112, 112, 3]
    assert s["total_params"] == sum(s["params_by_module"].values())
    assert s["total_params"] == 30_446_755
    # Hand count of multiply-adds: the decoder at 112x112 dominates; the whole is ~5 GFLOPs.
    assert 4.0 < s["gflops_per_frame"] < 6.0
    assert s["gflops_per_frame_identity_cached"] < s["gflops_per_frame"]
    names = {layer["name"] for layer in s["layers"]}
    assert {"audio_encoder/fc7", "identity_encoder/conv1", "image_decoder/out"} <= names


def test_five_images_conv1_kernel(capsys):
    s = _summary(capsys, "--config", "configs/five_images.py")
    conv1 = next(layer for layer in s["layers"] if layer["name"] == "identity_encoder/conv1/conv")
    assert conv1["params"] == 7 * 7 * 15 * 96
    assert s["input_shapes"]["identity"] == [112, 112, 15]


def test_v201_output_and_flops(capsys):
    s = _summary(capsys, "--config", "configs/v201.py")
    assert s["output_shape"] == [109, 109, 3]
    # XLA's count per frame with the identity cached: the decoder's 3x3 convolutions (2 k^2 cin cout H W,
    # summed by benchmarks/profile_layers.py: 6.34 GFLOP; XLA leaves out the taps on the zero padding,
    # 3% of them at these sides) and the audio CNN, plus ReLUs, lerps and the sigmoid. The PyTorch peer's counter gives 7.16: it also counts its bilinear up-sampling's
    # arithmetic, as this count did while the resize was two dense matrix products (7.11, before issue #34).
    import importlib.util

    import jax

    from s2v_jax.models import build_model, input_shapes
    from s2v_jax.models.generator import Speech2Vid
    from s2v_jax.summary import _flops, init_variables

    spec = importlib.util.spec_from_file_location("profile_layers", os.path.join(REPO, "benchmarks", "profile_layers.py"))
    prof = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prof)
    convs = sum(prof.conv_gflop(1, side, cin, cout) for _, side, cin, cout in prof.DECODER_CONVS)
    config = load_config(os.path.join(REPO, "configs", "v201.py"))
    model = build_model(config)
    variables, _ = init_variables(model, config)
    mfcc = jax.numpy.zeros((1,) + input_shapes(config)["mfcc"])
    audio = _flops(lambda v, a: model.apply(v, a, method=Speech2Vid.encode_audio), variables, mfcc) / 1e9
    assert 0.95 * (convs + audio) <= s["gflops_per_frame_identity_cached"] <= 1.03 * (convs + audio), (convs, audio)


def test_overrides_apply(capsys):
    """The overrides reach the network that is built, not only the echoed config: half the width is
    about a quarter of the parameters and of the FLOPs, and bfloat16 layers compute in bfloat16."""
    full = _summary(capsys, "--config", "configs/tiny.py", "model.width=0.25")
    half = _summary(capsys, "--config", "configs/tiny.py", "model.width=0.125", "model.dtype=bfloat16")
    assert 0.2 < half["total_params"] / full["total_params"] < 0.35
    assert 0.2 < half["gflops_per_frame"] / full["gflops_per_frame"] < 0.35
    from s2v_jax.models import build_model

    model = build_model(load_config("configs/default.py", ["model.dtype=bfloat16"]))
    assert str(model.dtype) in ("bfloat16", "<class 'jax.numpy.bfloat16'>") or "bfloat16" in str(model.dtype)


def test_a_config_file_lacking_a_field_is_refused_naming_it(tmp_path):
    """Every field the code reads is declared in the schema (configs/default.py): a config built
    without one fails at load with the field's name, not deep in training with a hidden default."""
    path = tmp_path / "partial.py"
    path.write_text("from configs import default\n\n\ndef get_config():\n    c = default.get_config()\n"
                    "    del c.train['mouth_weight']\n    return c\n")
    with pytest.raises(ConfigError, match="train.mouth_weight"):
        load_config(str(path))
    config = load_config("configs/default.py", ["train.mouth_weight=4"])  # declared: overridable
    assert config.train.mouth_weight == 4.0


@pytest.mark.parametrize("args,needle", [
    (["--config", "configs/no_such.py"], "config file not found: 'configs/no_such.py'"),
    (["--config", "configs/default.py", "model.colour=3"], "unknown config field 'model.colour'"),
    (["--config", "configs/default.py", "model.dtype=float64"], "model.dtype must be one of"),
])
def test_bad_config_is_one_line_error(args, needle):
    proc = subprocess.run([sys.executable, "-m", "s2v_jax.cli", "model-summary", *args],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_apply_override_types():
    config = load_config("configs/default.py")
    apply_override(config, "train.learning_rate=1")
    assert isinstance(config.train.learning_rate, float) and config.train.learning_rate == 1.0
    apply_override(config, "model.skips=['A','B']")
    assert config.model.skips == ("A", "B")
    with pytest.raises(ConfigError, match="field=value"):
        apply_override(config, "train.batch_size")


def test_top_level_help_lists_every_command(capsys):
    from s2v_jax.cli import COMMANDS

    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the help lines
    for name, _module, _help in COMMANDS:
        assert name in out
    assert "last 10% held out" in out  # a literal percent sign survives argparse's formatting
