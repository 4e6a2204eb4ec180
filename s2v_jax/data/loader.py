"""The one way every task's batches are made (the generator's, the judge's, a fine-tune's): an endless,
seeded order of a sample source, a grain random map per element, batches, exact resume (`Loader`),
and, with several processes, each process's rows of one global order (`GlobalOrder`)."""

import json
from typing import Any, Dict

import grain.python as grain
import numpy as np

from s2v_jax.errors import DataError


class Loader:
    """Iterator of batch dicts with JSON-serialisable `get_state`/`set_state`."""

    def __init__(self, data_loader: grain.DataLoader, num_samples: int, batch_size: int):
        self._data_loader = data_loader
        self._iterator = iter(data_loader)
        self.num_samples, self.batch_size = num_samples, batch_size

    def __iter__(self):
        return self

    def __next__(self) -> Dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in next(self._iterator).items()}  # plain views of grain's arrays

    def close(self) -> None:
        """Stops grain's worker processes (they also stop when the loader is freed)."""
        self._iterator = None
        self._data_loader = None

    def get_state(self) -> Dict[str, Any]:
        return json.loads(self._iterator.get_state().decode())

    def set_state(self, state: Dict[str, Any]) -> None:
        try:
            self._iterator.set_state(json.dumps(state).encode())
        except ValueError as e:  # grain: the saved state names another data source (repr) than this loader's
            if "does not match" not in str(e):
                raise
            saved = str(state.get("data_source", "")) or "another sample order"
            raise DataError(f"the checkpoint's data position was saved by another sample order ({saved}) than "
                            "this run's: it cannot resume its data exactly "
                            "(a work directory from an earlier s2v_jax, or another dataset or batch size). Start a new "
                            "--workdir, with --config.train.init_from=OLD_WORKDIR to keep its weights") from None


class GlobalOrder(grain.RandomAccessDataSource):
    """This process's part of one global sample stream, so that P processes together draw exactly the
    batches one process would (a pod or a SLURM job trains as one machine does, exact resume included).

    The global stream is the epochs of `source` one after another, each in its own seeded permutation
    (`seed`, epoch). Global batch k is stream positions [k B, (k+1) B) with B = batch x process_count;
    process p takes positions k B + p batch + [0, batch). With W grain worker processes, worker w reads
    local elements w, w + W, ... and batches them itself, and grain hands out the workers' batches in
    turn; the local element i is placed so that output batch n is global batch n, whatever W. Every element carries its stream position ('stream_position'), from which
    `GlobalRandom` seeds its random draws, so identity frames and augmentation follow the element, not
    the process that draws it. Processes read disjoint elements; their union is the one-process order."""

    EPOCHS = 1 << 24  # the stream's length in epochs (endless in practice; grain's sampler needs a length)

    def __init__(self, source, seed: int, batch_size: int, process_index: int = 0, process_count: int = 1,
                 workers: int = 0):
        self.source, self.seed = source, int(seed)
        self.batch, self.index, self.count = int(batch_size), int(process_index), int(process_count)
        self.workers = max(1, int(workers))
        self._epoch, self._perm = None, None

    def __len__(self) -> int:
        return len(self.source) * self.EPOCHS // self.count

    def position(self, i: int) -> int:
        """The global stream position of this process's local element i (read by worker i % W)."""
        worker, m = divmod(int(i), self.workers)[::-1]
        j, row = divmod(m, self.batch)  # the worker's batch j, its row
        k = j * self.workers + worker   # the batch grain hands out as its k-th
        return k * self.batch * self.count + self.index * self.batch + row

    def record_of(self, position: int) -> int:
        """The source index at global stream position `position`."""
        epoch, pos = divmod(int(position), len(self.source))
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.source))
        return int(self._perm[pos])

    def __getitem__(self, i: int) -> Dict[str, Any]:
        position = self.position(i)
        return {**self.source[self.record_of(position)], "stream_position": position}

    def __getstate__(self):
        return {**self.__dict__, "_epoch": None, "_perm": None}

    def __repr__(self) -> str:
        # grain compares it with the one in a restored state. Not the process index: the job writes one
        # checkpoint (process 0's loader state) and every process resumes from it; a process's state is
        # only how many of its local elements were read, the same count on every process.
        return (f"GlobalOrder({self.source!r}, seed={self.seed}, {self.count} process(es) x {self.batch}, "
                f"{self.workers} reader(s))")


class GlobalRandom(grain.MapTransform):
    """A grain random map whose draws are seeded by the element's global stream position
    (`GlobalOrder`) and the loader's seed, not by where grain's sampler put it in this process."""

    def __init__(self, transform: grain.RandomMapTransform, seed: int):
        self.transform, self.seed = transform, int(seed)

    def map(self, element: Dict[str, Any]) -> Dict[str, np.ndarray]:
        element = dict(element)
        rng = np.random.default_rng([self.seed, int(element.pop("stream_position"))])
        return self.transform.random_map(element, rng)


def build_loader(source, transform, *, batch_size: int, seed: int, workers: int = 0, process_index: int = 0,
                 process_count: int = 1, read_threads: int = 4, prefetch: int = 64) -> "Loader":
    """The one way every task's batches are made: endless, shuffled (`seed`), `transform` (a grain random
    map) per element, batched, resumable (`Loader`). With several processes, each makes its `batch_size`
    rows of every global batch of one shared order (`GlobalOrder`): together they draw what one process
    with batch `batch_size x process_count` draws, row for row."""
    if len(source) == 0:
        raise DataError(f"{source!r} has no samples")
    ordered = GlobalOrder(source, seed, batch_size, process_index, process_count, workers)
    sampler = grain.IndexSampler(num_records=len(ordered), shard_options=grain.NoSharding(), shuffle=False,
                                 num_epochs=1, seed=seed)
    ops = [GlobalRandom(transform, seed), grain.Batch(batch_size=batch_size, drop_remainder=True)]
    dl = grain.DataLoader(data_source=ordered, sampler=sampler, operations=ops, worker_count=workers,
                          shard_options=grain.NoSharding(),
                          read_options=grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=prefetch))
    return Loader(dl, len(source), batch_size)
