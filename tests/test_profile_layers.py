"""benchmarks/profile_layers.py profiles the network it names: its layer list is the v201 decoder's
(kernel shapes of the flax model, sides of the up-sampling chain), and its FLOP count is the
convolutions' share of the model summary's."""

import importlib.util
import os

import jax
import jax.numpy as jnp

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _profile():
    spec = importlib.util.spec_from_file_location("profile_layers", os.path.join(REPO, "benchmarks", "profile_layers.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_profiled_layers_are_the_v201_decoders():
    from flax import traverse_util

    from s2v_jax.config_utils import load_config
    from s2v_jax.models import build_model, input_shapes
    from s2v_jax.summary import model_summary

    prof = _profile()
    config = load_config(os.path.join(REPO, "configs", "v201.py"))
    shapes = input_shapes(config)
    v = jax.eval_shape(build_model(config).init, jax.random.PRNGKey(0), jnp.zeros((1,) + shapes["mfcc"]),
                       jnp.zeros((1,) + shapes["identity"]))
    kernels = {k[1]: x.shape for k, x in traverse_util.flatten_dict(v["params"]).items()
               if k[0] == "image_decoder" and k[-1] == "kernel"}
    profiled = {name: (3, 3, cin, cout) for name, _, cin, cout in prof.DECODER_CONVS}
    assert profiled == {k: s for k, s in kernels.items() if s[:2] == (3, 3)}
    sides = [side for _, side, _, _ in prof.DECODER_CONVS]
    model = build_model(config)
    frames = jax.eval_shape(model.apply, v, jnp.zeros((1,) + shapes["mfcc"]), jnp.zeros((1,) + shapes["identity"]))
    assert sides == sorted(sides) and sides[-1] == frames.shape[1]  # the last layers run at the output's side
    for _, src, dst, _ in prof.UPSAMPLES:
        assert src in sides and dst in sides and dst > src
    # per frame, the profiled convolutions are most of the model's forward FLOPs, never more
    conv = sum(prof.conv_gflop(1, s, i, o) for _, s, i, o in prof.DECODER_CONVS)
    total = float(model_summary(config)["gflops_per_frame"])
    assert 0.5 * total < conv <= total, (conv, total)
