"""Data parallelism: the same step under `jax.pmap` or under `jax.jit` on a 1-D mesh.

`config.train.parallel` picks the mode:
- 'pmap': per-device step, `axis_name='batch'`; gradients are `pmean`-ed and
  BatchNorm is built with `axis_name='batch'` (sync BN), so the statistics are
  those of the global batch. State is replicated with a leading device axis.
- 'mesh': the single-device step under `jax.jit` with a 1-D `Mesh` over all
  devices; the batch is sharded along axis 'batch' and the state replicated
  (`NamedSharding`), and XLA inserts the collectives, so BatchNorm statistics
  are global without any axis name.
Both give the update one device would compute on the global batch (tested in
tests/test_parallel.py with 8 simulated CPU devices).

Only APIs present in jax 0.7 through 0.11 are used (`jax.sharding.Mesh`,
`NamedSharding`, `PartitionSpec`, `jax.make_array_from_process_local_data`).
"""

import logging
import os
from typing import Any, Callable, Mapping, Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from s2v_jax.errors import ConfigError, TrainingError

AXIS = "batch"
MODES = ("pmap", "mesh")


def _multihost_env(env: Mapping[str, str]) -> Optional[str]:
    """Names the launcher whose environment says this is one process of several, else None."""
    if env.get("JAX_COORDINATOR_ADDRESS"):
        return "JAX_COORDINATOR_ADDRESS"
    if "SLURM_JOB_ID" in env and int(env.get("SLURM_NTASKS", "1") or 1) > 1:
        return "SLURM"
    if int(env.get("OMPI_COMM_WORLD_SIZE", "1") or 1) > 1:
        return "Open MPI"
    if "," in env.get("TPU_WORKER_HOSTNAMES", ""):
        return "Cloud TPU pod"
    return None


def initialize_distributed(env: Optional[Mapping[str, str]] = None) -> bool:
    """Calls `jax.distributed.initialize()` when the environment describes a multi-process job.

    Detected: `JAX_COORDINATOR_ADDRESS` (with `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`),
    SLURM with more than one task, Open MPI with more than one rank, Cloud TPU
    pods. Must run before anything touches a JAX device. Returns whether JAX
    runs distributed.
    """
    env = os.environ if env is None else env
    if jax.distributed.is_initialized():
        return True
    launcher = _multihost_env(env)
    if launcher is None:
        return False
    kwargs = {}
    if env.get("JAX_NUM_PROCESSES"):
        kwargs["num_processes"] = int(env["JAX_NUM_PROCESSES"])
    if env.get("JAX_PROCESS_ID"):
        kwargs["process_id"] = int(env["JAX_PROCESS_ID"])
    logging.info("initialising jax.distributed (%s)", launcher)
    try:  # CPU processes reach each other through gloo (GPU/TPU clients are unaffected by this setting)
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except (AttributeError, KeyError, ValueError):  # a JAX without the setting: its default
        pass
    try:
        jax.distributed.initialize(**kwargs)
    except (ValueError, TypeError, RuntimeError) as e:
        raise TrainingError(f"multi-process start-up ({launcher}) failed: {e}; set JAX_COORDINATOR_ADDRESS, "
                            "JAX_NUM_PROCESSES and JAX_PROCESS_ID, or unset them for one process") from e
    return True


# ---------------------------------------------------------------- pmap helpers

def _local(devices):
    """This process's devices among `devices`."""
    return [d for d in devices if d.process_index == jax.process_index()]


def replicate(tree, devices=None):
    """Copies a host pytree to every local device of `devices` (default: all), with a leading device axis
    (for pmap; in a multi-process job `devices` is the global list, identical on every process)."""
    devices = devices or jax.devices()
    stacked = jax.tree.map(lambda x: np.stack([np.asarray(x)] * len(_local(devices))), tree)
    return jax.pmap(lambda x: x, devices=devices)(stacked)


def unreplicate(tree):
    """First device's copy of a pmap-replicated pytree, as host numpy arrays."""
    return jax.device_get(jax.tree.map(lambda x: x[0], tree))


def shard_for_pmap(batch, num_devices: Optional[int] = None):
    """Host batch `[b, ...]` -> `[num_devices, b // num_devices, ...]` (numpy; pmap copies the shards)."""
    n = num_devices or jax.local_device_count()

    def split(x):
        x = np.asarray(x)
        if x.shape[0] % n:
            raise TrainingError(f"per-process batch of {x.shape[0]} does not split over {n} local devices; "
                                f"make train.batch_size a multiple of {n * jax.process_count()}")
        return x.reshape((n, x.shape[0] // n) + x.shape[1:])

    return jax.tree.map(split, batch)


# ---------------------------------------------------------------- mesh helpers

def create_mesh(devices=None) -> Mesh:
    """1-D mesh over all (global) devices with axis 'batch'."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), (AXIS,))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(AXIS))


def put_replicated(tree, mesh: Mesh):
    """Host pytree (the same on every process) -> global arrays replicated over the mesh."""
    sharding = replicated_sharding(mesh)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree)


def shard_for_mesh(batch, mesh: Mesh):
    """This process's host batch `[b, ...]` -> global arrays `[b * process_count, ...]` sharded on 'batch'."""
    sharding = batch_sharding(mesh)
    n_local = len(mesh.local_devices)

    def put(x):
        x = np.asarray(x)
        if x.shape[0] % n_local:
            raise TrainingError(f"per-process batch of {x.shape[0]} does not split over {n_local} local "
                                f"devices; make train.batch_size a multiple of {mesh.devices.size}")
        return jax.make_array_from_process_local_data(sharding, x)

    return jax.tree.map(put, batch)


# ---------------------------------------------------------------- one interface for both modes

class DataParallel:
    """Placement and compilation of the train/eval steps for one parallel mode.

    `axis_name` is 'batch' under pmap (build the model and steps with it) and
    None under the mesh. Usage:

        dp = DataParallel(config.train.parallel)
        p_train = dp.compile_train_step(make_train_step(config, axis_name=dp.axis_name))
        state = dp.put_state(host_state)
        state, metrics = p_train(state, dp.shard_batch(batch))
        host_metrics = dp.fetch(metrics)
    """

    def __init__(self, mode: str, devices=None):
        if mode not in MODES:
            raise ConfigError(f"train.parallel must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self.axis_name = AXIS if mode == "pmap" else None
        if mode == "pmap":
            # every device of the job, the same list on every process: pmap's collectives (the gradient
            # pmean, the validation psum) then span all processes; each process feeds its own devices
            self.devices = list(devices) if devices is not None else jax.devices()
            self.mesh = None
        else:
            self.mesh = create_mesh(devices)
            self.devices = list(self.mesh.devices.flat)

    @property
    def num_local_devices(self) -> int:
        return len(_local(self.devices)) if self.mode == "pmap" else len(self.mesh.local_devices)

    def check_batch_size(self, global_batch: int) -> None:
        """Raises a ConfigError unless the global batch splits evenly over processes and devices."""
        n = self.num_local_devices * jax.process_count()
        if global_batch % n:
            raise ConfigError(f"train.batch_size={global_batch} must be a multiple of the {n} devices")

    def compile_train_step(self, step_fn: Callable) -> Callable:
        """`step_fn(state, batch) -> (state, metrics)`, parallelised; the input state is donated."""
        if self.mode == "pmap":
            return jax.pmap(step_fn, axis_name=AXIS, devices=self.devices, donate_argnums=(0,))
        rep, data = replicated_sharding(self.mesh), batch_sharding(self.mesh)
        return jax.jit(step_fn, in_shardings=(rep, data), out_shardings=(rep, rep), donate_argnums=(0,))

    def compile_eval_step(self, step_fn: Callable) -> Callable:
        """`step_fn(state, batch) -> sums`, parallelised (state not donated)."""
        if self.mode == "pmap":
            return jax.pmap(step_fn, axis_name=AXIS, devices=self.devices)
        rep, data = replicated_sharding(self.mesh), batch_sharding(self.mesh)
        return jax.jit(step_fn, in_shardings=(rep, data), out_shardings=rep)

    def put_state(self, host_state):
        """Host (unreplicated) state -> device state for this mode."""
        if self.mode == "pmap":
            return replicate(host_state, self.devices)
        return put_replicated(host_state, self.mesh)

    def state_for_checkpoint(self, state):
        """Device state -> what Orbax saves: host numpy (pmap) or the replicated global arrays (mesh)."""
        return unreplicate(state) if self.mode == "pmap" else state

    def shard_batch(self, batch):
        """This process's host batch -> the step's batch argument."""
        if self.mode == "pmap":
            return shard_for_pmap(batch, self.num_local_devices)
        return shard_for_mesh(batch, self.mesh)

    def fetch(self, tree) -> Any:
        """Device outputs (metrics) -> host numpy, one copy (the first device's under pmap)."""
        host = jax.device_get(tree)
        if self.mode == "pmap":
            host = jax.tree.map(lambda x: x[0], host)
        return host
