"""`os2d-studio`: everything the GUI does, headless and scriptable, over the same core jobs.

Each subcommand lives in the module of its concern (`detection`, `measure`, `data`, `training`, `pruning`,
`deploy`); this one puts them in one parser and turns user errors into one line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from core.cli import data, deploy, detection, measure, pruning, training
from core.errors import USER_ERRORS, user_message
from core.jobs import Cancelled


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="os2d-studio", description="OS2D one-shot detection, importance, pruning.")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (detection.add_detect, measure.add_info, data.add_synth, measure.add_eval, training.add_train,
                pruning.add_importance, pruning.add_prune, pruning.add_sensitivity, training.add_finetune,
                training.add_prune_stages, measure.add_profile, deploy.add_export, deploy.add_quantize,
                detection.add_compare):
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Cancelled:
        print("cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        print(f"error: {user_message(e)}", file=sys.stderr)
        return 2
