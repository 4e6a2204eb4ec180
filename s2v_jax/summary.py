"""Model summary: parameter counts, per-layer output shapes and FLOPs per frame.

FLOPs come from XLA's cost analysis of the compiled forward pass at batch 1
(multiply and add counted separately), so they describe what actually runs.
"""

from typing import Any, Dict, List

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import traverse_util

from s2v_jax.models import Speech2Vid, build_model, input_shapes


def _count(tree) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(tree)))


def _flops(fn, *args) -> float:
    """XLA's FLOP count of `fn(*args)` (cost_analysis is a dict, or a list of one in old jax)."""
    cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0]
    return float(cost.get("flops", float("nan")))


def _shapes(tree) -> Any:
    return jax.tree_util.tree_map(lambda x: list(x.shape[1:]), tree)


def init_variables(model, config, batch: int = 1, rng=None):
    """Shape-only initialisation (`jax.eval_shape`): no FLOPs spent on random numbers."""
    rng = jax.random.PRNGKey(0) if rng is None else rng
    shapes = input_shapes(config)
    args = [jnp.zeros((batch,) + s, jnp.float32) for s in shapes.values()]
    return jax.eval_shape(model.init, rng, *args), args


def model_summary(config: ml_collections.ConfigDict) -> Dict[str, Any]:
    """A JSON-serialisable summary of the model a config describes."""
    model = build_model(config)
    abstract, args = init_variables(model, config)
    variables = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), abstract)
    params = variables["params"]

    out, state = model.apply(variables, *args, capture_intermediates=True, mutable=["intermediates"])
    layers: List[Dict[str, Any]] = []
    flat_params = traverse_util.flatten_dict(params)
    for path, value in traverse_util.flatten_dict(state["intermediates"]).items():
        name = "/".join(p for p in path[:-1])
        if not name:
            continue
        prefix = tuple(path[:-1])
        n = sum(int(np.prod(v.shape)) for k, v in flat_params.items() if k[:len(prefix)] == prefix)
        layers.append({"name": name, "output_shape": _shapes(value[0] if isinstance(value, tuple) and len(value) == 1 else value),
                       "params": n})

    summary = {
        "model": config.model.name,
        "dtype": config.model.get("dtype", "float32"),
        "input_shapes": {k: list(v) for k, v in input_shapes(config).items()},
        "output_shape": list(out.shape[1:]),
        "total_params": _count(params),
        "params_by_module": {k: _count(v) for k, v in params.items()},
        "batch_stats": _count(variables.get("batch_stats", {})),
        "layers": layers,
        "gflops_per_frame": _flops(lambda v, *a: model.apply(v, *a), variables, *args) / 1e9,
    }
    if isinstance(model, Speech2Vid):
        m = config.model
        summary.update(decoder=m.decoder, skips=list(m.skips), num_identity_images=m.num_identity_images,
                       width=m.width)
        ident = model.apply(variables, args[1], method=Speech2Vid.encode_identity)
        summary["gflops_per_frame_identity_cached"] = _flops(
            lambda v, a, i: model.apply(v, a, i, method=Speech2Vid.generate_from_identity),
            variables, args[0], ident) / 1e9
        summary["gflops_identity_encoder"] = _flops(
            lambda v, x: model.apply(v, x, method=Speech2Vid.encode_identity), variables, args[1]) / 1e9
    return summary


def format_summary(s: Dict[str, Any]) -> str:
    """Human-readable table of a `model_summary` dict."""
    lines = [f"model: {s['model']}  dtype: {s['dtype']}  inputs: {s['input_shapes']}"]
    if "decoder" in s:
        lines.append(f"decoder: {s['decoder']}  skips: {s['skips']}  identity images: "
                     f"{s['num_identity_images']}  width: {s['width']}")
    lines.append("")
    lines.append(f"{'layer':<46} {'output shape':<34} {'params':>12}")
    lines.append("-" * 94)
    for layer in s["layers"]:
        lines.append(f"{layer['name']:<46} {str(layer['output_shape']):<34} {layer['params']:>12,}")
    lines.append("-" * 94)
    for k, v in s["params_by_module"].items():
        lines.append(f"params {k:<39} {v:>47,}")
    lines.append(f"{'total params':<46} {s['total_params']:>47,}")
    lines.append(f"{'BatchNorm statistics (not trained)':<46} {s['batch_stats']:>47,}")
    lines.append(f"output shape: {s['output_shape']}")
    lines.append(f"GFLOPs per frame: {s['gflops_per_frame']:.3f}")
    if "gflops_per_frame_identity_cached" in s:
        lines.append(f"GFLOPs per frame, identity cached: {s['gflops_per_frame_identity_cached']:.3f} "
                     f"(identity encoder: {s['gflops_identity_encoder']:.3f}, once per video)")
    return "\n".join(lines)
