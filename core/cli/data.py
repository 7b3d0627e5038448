"""`synth`: the one-shot shelf benchmark."""

from __future__ import annotations

from pathlib import Path

from core.cli.options import non_negative_int
from core.errors import InputError
from core.jobs import ConsoleProgress


def cmd_synth(args) -> int:
    from core.data.synth import SynthConfig, generate

    out = Path(args.out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(out, "refusing to overwrite: it exists and is not an empty folder")
    cfg = SynthConfig(seed=args.seed, **({"num_train_images": args.train_images} if args.train_images else {}),
                      **({"num_val_images": args.val_images} if args.val_images else {}))
    res = generate(args.out, cfg, progress=ConsoleProgress("synth"), cancel=None)
    print(f"wrote {res.out_dir}")
    return 0


def add_synth(sub) -> None:
    s = sub.add_parser("synth", help="generate the one-shot shelf benchmark")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--train-images", type=non_negative_int, default=0)
    s.add_argument("--val-images", type=non_negative_int, default=0)
    s.set_defaults(func=cmd_synth)
