"""Export a checkpoint as a small inference model: config.json and
variables.npz (params in float16 by default, no optimizer state), the format
the package ships its models in. Every --checkpoint option takes the result.

    s2v export --checkpoint workdirs/syncnet_real --out models/judge
"""

import json


def add_arguments(parser):
    parser.add_argument("--checkpoint", required=True, help="training work directory or checkpoint step directory")
    parser.add_argument("--out", required=True, help="output folder (created; must hold no other files)")
    parser.add_argument("--dtype", default="float16", choices=("float16", "bfloat16", "float32"),
                        help="dtype of the stored params (default float16; loading casts to float32)")


def run(args) -> int:
    from s2v_jax.train.checkpointing import load_checkpoint
    from s2v_jax.train.export import export_model

    config, variables = load_checkpoint(args.checkpoint)
    info = export_model(config, variables, args.out, dtype=args.dtype)
    print(json.dumps({"out": args.out, **info}))
    return 0
