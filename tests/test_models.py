"""The model family against ../shared/SPEC.md: shapes, hand-counted parameters,
identity caching, the 5-image variant, bfloat16 and jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from s2v_jax.config_utils import load_config
from s2v_jax.models import (
    AudioEncoder,
    BilinearDecoder,
    DeblurNet,
    IdentityEncoder,
    Speech2Vid,
    TransposedDecoder,
    build_model,
)

KEY = jax.random.PRNGKey(0)


def _abstract_intermediates(module, *args):
    """Output shapes of every submodule call, computed abstractly (no FLOPs)."""
    def f(*a):
        variables = module.init(KEY, *a)
        _, state = module.apply(variables, *a, capture_intermediates=True, mutable=["intermediates"])
        return state["intermediates"]
    tree = jax.eval_shape(f, *args)
    return {"/".join(k[:-1]): v for k, v in traverse_util.flatten_dict(tree).items()}


def _params(module, *args):
    return jax.eval_shape(module.init, KEY, *args)["params"]


def _count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


def conv_bn(kh, kw, cin, cout):
    """Encoder layer: conv without bias (BatchNorm shifts) + BN scale and bias."""
    return kh * kw * cin * cout + 2 * cout


def conv(kh, kw, cin, cout):
    """Decoder layer: conv with bias, no BatchNorm."""
    return kh * kw * cin * cout + cout


AUDIO_SHAPES = {  # SPEC table, audio encoder
    "conv1": (12, 35, 64), "conv2": (12, 35, 128), "conv3": (11, 17, 256), "conv4": (11, 17, 256),
    "conv5": (11, 17, 256), "fc6": (1, 1, 512), "fc7": (1, 1, 256),
}
IDENTITY_SHAPES = {  # SPEC table, identity encoder
    "conv1": (53, 53, 96), "conv2": (12, 12, 256), "conv3": (6, 6, 512), "conv4": (6, 6, 512),
    "conv5": (6, 6, 512), "fc6": (1, 1, 512), "fc7": (1, 1, 256),
}


def test_audio_encoder_shapes_and_params():
    x = jnp.zeros((2, 12, 35, 1))
    shapes = _abstract_intermediates(AudioEncoder(), x)
    for name, shape in AUDIO_SHAPES.items():
        assert shapes[name][0].shape == (2,) + shape, name
    assert shapes[""][0].shape == (2, 256)
    expected = (conv_bn(3, 3, 1, 64) + conv_bn(3, 3, 64, 128) + conv_bn(3, 3, 128, 256)
                + 2 * conv_bn(3, 3, 256, 256) + conv_bn(5, 8, 256, 512) + conv_bn(1, 1, 512, 256))
    assert _count(_params(AudioEncoder(), x)) == expected == 6_926_272


def test_audio_pool_shapes_follow_spec():
    """pool2 (3x3, stride (1,2), pad top 1) -> 11x17; pool5 (3x3, s2) -> 5x8: seen in the computed maps.
    conv3-5 keep their input's size ('same'), so their 11x17 outputs are pool2's; fc6, a 5x8 'valid'
    filter, gives 1x1 only on a 5x8 pool5 map (a 6x8 one would give 2x1), and a 0.35 s window longer
    or shorter changes every one of these."""
    shapes = _abstract_intermediates(AudioEncoder(), jnp.zeros((1, 12, 35, 1)))
    for name in ("conv3", "conv4", "conv5"):
        assert shapes[name][0].shape[1:3] == (11, 17), (name, shapes[name][0].shape)
    assert shapes["fc6"][0].shape == (1, 1, 1, 512) and shapes["fc7"][0].shape == (1, 1, 1, 256)
    longer = _abstract_intermediates(AudioEncoder(), jnp.zeros((1, 12, 39, 1)))
    assert longer["conv3"][0].shape[1:3] == (11, 19) and longer["fc6"][0].shape[1:3] != (1, 1)


@pytest.mark.parametrize("num_images", [1, 5])
def test_identity_encoder_shapes_and_params(num_images):
    x = jnp.zeros((2, 112, 112, 3 * num_images))
    shapes = _abstract_intermediates(IdentityEncoder(), x)
    for name, shape in IDENTITY_SHAPES.items():
        assert shapes[name][0].shape == (2,) + shape, name
    emb, skips = shapes[""][0]
    assert emb.shape == (2, 256)
    assert skips["A"].shape == (2, 53, 53, 96)   # conv1
    assert skips["B"].shape == (2, 26, 26, 96)   # pool1
    assert skips["C"].shape == (2, 12, 12, 256)  # conv2
    expected = (conv_bn(7, 7, 3 * num_images, 96) + conv_bn(5, 5, 96, 256) + conv_bn(3, 3, 256, 512)
                + 2 * conv_bn(3, 3, 512, 512) + conv_bn(6, 6, 512, 512) + conv_bn(1, 1, 512, 256))
    assert _count(_params(IdentityEncoder(), x)) == expected


def _skips(batch=2, width=1.0):
    c = lambda n: max(4, int(round(n * width)))  # noqa: E731
    return {"A": jnp.zeros((batch, 53, 53, c(96))), "B": jnp.zeros((batch, 26, 26, c(96))),
            "C": jnp.zeros((batch, 12, 12, c(256)))}


def test_transposed_decoder_shapes_and_params():
    z = jnp.zeros((2, 512))
    dec = TransposedDecoder()
    shapes = _abstract_intermediates(dec, z, _skips())
    expected_shapes = {"fc": (1, 1, 128), "up6": (6, 6, 512), "up12": (12, 12, 256), "up26": (26, 26, 256),
                       "conv26": (26, 26, 96), "up53": (53, 53, 96), "up112": (112, 112, 64),
                       "conv112": (112, 112, 32), "out": (112, 112, 3)}
    for name, shape in expected_shapes.items():
        assert shapes[name][0].shape == (2,) + shape, name
    expected = (conv(1, 1, 512, 128) + conv(6, 6, 128, 512) + conv(4, 4, 512, 256)
                + conv(4, 4, 256 + 256, 256)      # + skip C (conv2, 256 channels)
                + conv(3, 3, 256, 96)
                + conv(3, 3, 96 + 96, 96)         # + skip B (pool1, 96 channels)
                + conv(8, 8, 96, 64)              # no skip A: the paper found it copies the still
                + conv(3, 3, 64, 32) + conv(3, 3, 32, 3))
    assert _count(_params(dec, z, _skips())) == expected


def test_bilinear_v201_decoder_shapes_and_params():
    z = jnp.zeros((2, 512))
    dec = BilinearDecoder()
    shapes = _abstract_intermediates(dec, z, _skips())
    expected_shapes = {"fc": (1, 1, 128), "conv3": (3, 3, 256), "conv6": (6, 6, 512), "conv12": (12, 12, 256),
                       "conv26a": (26, 26, 256), "conv26b": (26, 26, 96), "conv53": (53, 53, 96),
                       "conv109a": (109, 109, 64), "conv109b": (109, 109, 32), "out": (109, 109, 3)}
    for name, shape in expected_shapes.items():
        assert shapes[name][0].shape == (2,) + shape, name
    expected = (conv(1, 1, 512, 128) + conv(3, 3, 128, 256) + conv(3, 3, 256, 512) + conv(3, 3, 512, 256)
                + conv(3, 3, 256 + 256, 256) + conv(3, 3, 256, 96) + conv(3, 3, 96 + 96, 96)
                + conv(3, 3, 96 + 96, 64) + conv(3, 3, 64, 32) + conv(3, 3, 32, 3))
    assert _count(_params(dec, z, _skips())) == expected


def test_deblur_net_layers_and_residual():
    x = jax.random.uniform(KEY, (1, 32, 32, 3))
    net = DeblurNet()
    params = _params(net, x)
    assert len(params) == 10
    expected = conv(3, 3, 3, 64) + 8 * conv(3, 3, 64, 64) + conv(3, 3, 64, 3)
    assert _count(params) == expected
    variables = net.init(KEY, x)
    # With the last layer zeroed the residual net is the identity map.
    zeroed = jax.tree_util.tree_map(jnp.zeros_like, variables["params"]["conv10"])
    variables = {"params": {**variables["params"], "conv10": zeroed}}
    np.testing.assert_allclose(net.apply(variables, x), x, atol=1e-6)


@pytest.mark.parametrize("config_name,size", [("default", 112), ("five_images", 112), ("v201", 109)])
def test_generator_output_shapes(config_name, size):
    config = load_config(f"configs/{config_name}.py")
    model = build_model(config)
    k = config.model.num_identity_images
    out = jax.eval_shape(lambda: model.init_with_output(
        KEY, jnp.zeros((3, 12, 35, 1)), jnp.zeros((3, 112, 112, 3 * k)))[0])
    assert out.shape == (3, size, size, 3)


def test_five_image_variant_differs_only_in_conv1():
    one = _params(build_model(load_config("configs/default.py")), jnp.zeros((1, 12, 35, 1)), jnp.zeros((1, 112, 112, 3)))
    five = _params(build_model(load_config("configs/five_images.py")), jnp.zeros((1, 12, 35, 1)),
                   jnp.zeros((1, 112, 112, 15)))
    flat1, flat5 = traverse_util.flatten_dict(one), traverse_util.flatten_dict(five)
    assert flat1.keys() == flat5.keys()
    differing = sorted("/".join(k) for k in flat1 if flat1[k].shape != flat5[k].shape)
    assert differing == ["identity_encoder/conv1/conv/kernel"]
    assert flat5[("identity_encoder", "conv1", "conv", "kernel")].shape == (7, 7, 15, 96)


def _tiny_model(decoder="transposed", skips=("B", "C"), dtype=jnp.float32, k=1):
    return Speech2Vid(decoder=decoder, skips=skips, num_identity_images=k, width=0.125, dtype=dtype)


def _inputs(batch=4, k=1, seed=1):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    mfcc = jax.random.normal(k1, (batch, 12, 35, 1)) * 10.0
    identity = jax.random.uniform(k2, (1, 112, 112, 3 * k))
    return mfcc, jnp.broadcast_to(identity, (batch, 112, 112, 3 * k))


@pytest.mark.parametrize("decoder,skips,k", [("transposed", ("B", "C"), 1), ("bilinear", ("A", "B", "C"), 5)])
def test_cached_identity_gives_the_same_frames(decoder, skips, k):
    model = _tiny_model(decoder, skips, k=k)
    mfcc, identity = _inputs(k=k)
    variables = model.init(KEY, mfcc, identity)
    full = jax.jit(model.apply)(variables, mfcc, identity)
    cached = jax.jit(lambda v, x: model.apply(v, x, method=Speech2Vid.encode_identity))(variables, identity[:1])
    assert cached["embedding"].shape[0] == 1
    assert set(cached) == {"embedding", *skips}
    frames = jax.jit(lambda v, m, i: model.apply(v, m, i, method=Speech2Vid.generate_from_identity))(
        variables, mfcc, cached)
    np.testing.assert_allclose(frames, full, atol=1e-5)
    assert float(jnp.abs(frames[0] - frames[1]).max()) > 0  # frames do depend on the audio


def test_bfloat16_compute_stays_close_to_float32():
    mfcc, identity = _inputs()
    f32 = _tiny_model()
    variables = f32.init(KEY, mfcc, identity)
    bf16 = _tiny_model(dtype=jnp.bfloat16)
    out32 = jax.jit(f32.apply)(variables, mfcc, identity)
    out16 = jax.jit(bf16.apply)(variables, mfcc, identity)
    assert out16.dtype == jnp.float32  # sigmoid output is returned in float32
    params16 = bf16.init(KEY, mfcc, identity)["params"]
    assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(params16))
    assert float(jnp.abs(out32 - out16).max()) < 0.03
    assert float(jnp.abs(out32 - out16).mean()) < 0.005


def test_training_mode_jits_and_updates_batch_stats():
    model = _tiny_model()
    mfcc, identity = _inputs()
    variables = model.init(KEY, mfcc, identity)

    @jax.jit
    def loss_and_stats(v):
        def loss(p):
            out, upd = model.apply({"params": p, "batch_stats": v["batch_stats"]}, mfcc, identity, train=True,
                                   mutable=["batch_stats"])
            return jnp.mean(jnp.abs(out - identity[..., :3])), upd
        return jax.value_and_grad(loss, has_aux=True)(v["params"])

    (loss, updates), grads = loss_and_stats(variables)
    assert np.isfinite(float(loss))
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree_util.tree_leaves(grads))
    before = variables["batch_stats"]["audio_encoder"]["conv1"]["bn"]["mean"]
    after = updates["batch_stats"]["audio_encoder"]["conv1"]["bn"]["mean"]
    assert float(jnp.abs(after - before).max()) > 0


def test_wrong_identity_channels_is_a_clear_error():
    model = _tiny_model(k=5)
    with pytest.raises(ValueError, match="15 channels"):
        model.init(KEY, jnp.zeros((1, 12, 35, 1)), jnp.zeros((1, 112, 112, 3)))


@pytest.mark.parametrize("decoder", ["transposed", "bilinear"])
def test_identity_residual_starts_from_the_still(decoder):
    """The residual model's output conv starts at zero, so at initialisation it
    returns the first still (the plain model does not)."""
    model = Speech2Vid(decoder=decoder, skips=("B", "C"), width=0.125, identity_residual=True)
    mfcc, identity = _inputs(batch=2)
    identity = jnp.clip(identity, 0.01, 0.99)
    variables = model.init(KEY, mfcc, identity)
    assert not np.any(np.asarray(variables["params"]["image_decoder"]["out"]["kernel"]))
    plain = Speech2Vid(decoder=decoder, skips=("B", "C"), width=0.125)
    assert np.any(np.asarray(plain.init(KEY, mfcc, identity)["params"]["image_decoder"]["out"]["kernel"]))
    out = model.apply(variables, mfcc, identity)
    still = identity[..., :3]
    if out.shape[1] != 112:
        still = jax.image.resize(still, (2, out.shape[1], out.shape[2], 3), "linear")
    np.testing.assert_allclose(out, still, atol=1e-5)
    cached = model.apply(variables, identity[:1], method=Speech2Vid.encode_identity)
    assert cached["still"].shape == (1, 112, 112, 3)


@pytest.mark.parametrize("decoder", ["transposed", "bilinear"])
def test_decoder_init_carries_the_audio_to_the_last_layer(decoder):
    """He initialisation with the transposed-conv fan-in correction keeps the
    audio code alive through the decoder at initialisation: changing only the
    audio must change the last hidden layer by a sizeable fraction of its
    spread. (Flax's default LeCun init without the correction shrank it about
    3000-fold, to 0.4% of the spread, so the identity skips drowned the audio
    and training never learned the mouth.)"""
    model = Speech2Vid(decoder=decoder, skips=("B", "C"), width=0.125)
    k1, k2 = jax.random.split(jax.random.PRNGKey(3))
    identity = jax.random.uniform(k1, (8, 112, 112, 3))
    mfcc_a = 8.0 * jax.random.normal(k2, (8, 12, 35, 1))  # the spread of real MFCCs
    mfcc_b = jnp.roll(mfcc_a, 1, axis=0)  # same stills, other speech
    variables = model.init(KEY, mfcc_a, identity)
    last = "conv112" if decoder == "transposed" else "conv109b"

    def hidden(mfcc):
        _, state = model.apply(variables, mfcc, identity, capture_intermediates=True, mutable=["intermediates"])
        return np.asarray(state["intermediates"]["image_decoder"][last]["__call__"][0])

    a, b = hidden(mfcc_a), hidden(mfcc_b)
    assert a.std() > 0.1
    assert np.abs(a - b).mean() > 0.05 * a.std()


@pytest.mark.parametrize("src,dst", [((1, 1), (3, 3)), ((3, 3), (6, 6)), ((12, 12), (26, 26)), ((26, 26), (53, 53)),
                                     ((53, 53), (109, 109)), ((5, 7), (4, 13)), ((2, 9), (2, 9))])
def test_bilinear_resize_equals_the_interpolation_matrices_values_and_gradients(src, dst):
    """The decoder's resize (two lerps by static indices, issue #34) equals the two matrix products it
    replaced, values and gradients, at v201's stages and odd shapes (down-sizing too); and corners align:
    the first and last rows and columns are the input's own."""
    from s2v_jax.models.layers import _resize_by_matrices, resize_bilinear_align_corners

    rng = np.random.default_rng(sum(src) + sum(dst))
    x = jnp.asarray(rng.normal(size=(2,) + src + (3,)), jnp.float32)
    got = resize_bilinear_align_corners(x, dst)
    assert got.shape == (2,) + dst + (3,)
    np.testing.assert_allclose(got, _resize_by_matrices(x, dst), atol=2e-6)
    np.testing.assert_allclose(got[:, 0, 0], x[:, 0, 0], atol=1e-6)
    np.testing.assert_allclose(got[:, -1, -1], x[:, -1, -1], atol=1e-6)
    w = jnp.asarray(rng.normal(size=(2,) + dst + (3,)), jnp.float32)
    g_new = jax.grad(lambda x: jnp.sum(resize_bilinear_align_corners(x, dst) * w))(x)
    g_ref = jax.grad(lambda x: jnp.sum(_resize_by_matrices(x, dst) * w))(x)
    np.testing.assert_allclose(g_new, g_ref, atol=1e-5)


def test_skip_conv_is_nn_conv_over_the_concatenation_with_one_faces_skip_computed_once():
    """decoder.SkipConv has nn.Conv's parameters (names, shapes, initial values) and output over
    concat([x, skip]), whether the skip is one face's (batch 1, its share computed once: issue #34) or
    one per sample (training); v201 checkpoints load unchanged."""
    import flax.linen as nn

    from s2v_jax.models.decoder import SkipConv

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(4, 9, 9, 5)), jnp.float32)
    one = jnp.asarray(rng.normal(size=(1, 9, 9, 3)), jnp.float32)
    each = jnp.asarray(rng.normal(size=(4, 9, 9, 3)), jnp.float32)
    init = nn.initializers.variance_scaling(2.0, "fan_in", "truncated_normal")
    ref = nn.Conv(6, (3, 3), padding=((1, 1), (1, 1)), kernel_init=init)
    new = SkipConv(6, kernel_init=init)
    v_ref = ref.init(jax.random.PRNGKey(1), jnp.concatenate([x, each], -1))
    v_new = new.init(jax.random.PRNGKey(1), x, one)
    assert jax.tree.structure(v_ref) == jax.tree.structure(v_new)
    for a, b in zip(jax.tree.leaves(v_ref), jax.tree.leaves(v_new)):
        np.testing.assert_array_equal(a, b)
    v = jax.tree.map(lambda a: a + 0.1, v_ref)  # a bias that is not zero
    for skip in (one, each):
        want = ref.apply(v, jnp.concatenate([x, jnp.broadcast_to(skip, (4,) + skip.shape[1:])], -1))
        np.testing.assert_allclose(new.apply(v, x, skip), want, atol=1e-5)
    v_plain = jax.tree.map(lambda a: a + 0.1, ref.init(jax.random.PRNGKey(2), x))  # a layer whose skip is off
    np.testing.assert_allclose(new.apply(v_plain, x), ref.apply(v_plain, x), atol=1e-5)
