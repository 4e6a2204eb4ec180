"""Trains Speech2Vid (or the deblurring net, or the sync expert) as a config describes.

    python run_train.py --config configs/tiny.py --workdir workdirs/tiny
    python run_train.py --config configs/default.py --config.train.num_steps=1000 --workdir W

Re-running with the same --workdir resumes from its latest checkpoint. Errors
the user can fix are printed on one line (exit status 2). The work itself is
`s2v_jax.train.entry`, which `s2v train-sync` runs too.
"""

import sys

from s2v_jax.errors import S2VError
from s2v_jax.train import entry


def main(argv=None) -> int:
    try:
        entry.run(sys.argv if argv is None else argv)
    except S2VError as e:
        print(f"run_train: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
