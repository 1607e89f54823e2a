"""``python -m pclkit pretrain``: pretrain a method of :mod:`pclkit.methods` (command line).

    python -m pclkit pretrain --preset synth_cpu --method pcl --out runs/pcl
    python -m pclkit pretrain --preset smoke --ablation dis_orth --set optim.lr=3e-4
    python -m pclkit pretrain --resume runs/pcl
    torchrun --nproc_per_node=4 -m pclkit pretrain --preset paper --set data.root=/frames

The loop is :class:`pclkit.trainer.Trainer` (also usable from Python through
:func:`pretrain`); configs are :mod:`pclkit.config`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pclkit import distributed
from pclkit.config import (
    ConfigError,
    TrainConfig,
    config_to_dict,
    load_config_file,
    parse_overrides,
    resolve_config,
)
from pclkit.methods import ablation_rows, method_names
from pclkit.runs import method_preset, run_folder
from pclkit.trainer import NonFiniteLossError, Trainer, WarmupCosine, pretrain

__all__ = ["add_arguments", "run", "config_from_args", "pretrain", "Trainer", "NonFiniteLossError", "WarmupCosine"]


# ---------------------------------------------------------------------------
# command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m pclkit pretrain``."""
    parser.add_argument("--preset", default=None,
                        help="smoke | synth_cpu (default) | paper, or a YAML file")
    parser.add_argument("--method", choices=method_names(), default=None, help="overrides the preset's method")
    parser.add_argument("--ablation", choices=list(ablation_rows()), default=None,
                        help=f"a row of the paper's ablation ({', '.join(ablation_rows())})")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default runs/<preset>_<method>_s<seed>)")
    parser.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                        help="continue the run in RUN_DIR from its last.pt (with its saved config)")
    parser.add_argument("--seed", type=int, default=None, help="run seed")
    parser.add_argument("--pose-view", choices=["flip", "roll", "render3d"], default=None,
                        help="pose change for ŝ and the pose negatives (views.pose_change)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, dotted (e.g. --set optim.lr=3e-4); repeatable")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, Path, bool]:
    """Resolve (config, run folder, resume?) from the command line."""
    overrides: dict[str, Any] = {}
    if args.ablation is not None:
        overrides.update(ablation_rows()[args.ablation])
    if args.method is not None:
        overrides["method"] = args.method
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.pose_view is not None:
        overrides["views.pose_change"] = args.pose_view
    overrides.update(parse_overrides(args.overrides))
    if args.resume is not None:
        if args.preset is not None:
            raise ConfigError("--resume continues with the run's saved config; drop --preset (use --set to change keys)")
        saved = args.resume / "config.yaml"
        if not saved.is_file():
            raise ConfigError(f"cannot resume: {saved} not found")
        base = config_to_dict(load_config_file(saved))
        # max_steps says where one invocation stops, it is not part of the run
        base["optim"]["max_steps"] = None
        config = resolve_config(None, overrides, base=base)
        if args.out is not None and args.out.resolve() != args.resume.resolve():
            raise ConfigError("--resume writes into RUN_DIR; do not give a different --out")
        return config, args.resume, True
    preset = args.preset or "synth_cpu"
    config = resolve_config(preset, overrides)
    variant = method_preset(preset, config.method)
    if variant != preset:
        print(f"note: {config.method} has its own recipe on {preset}'s data and budget: --preset {variant}",
              file=sys.stderr)
    out = args.out or run_folder(config.preset, config.method, config.seed)  # the one naming scheme (pclkit.runs)
    return config, out, False


def run(args: argparse.Namespace) -> int:
    """Run the command; 0 on success, 2 for a bad config, 1 when training cannot start or stops on NaN."""
    try:
        config, out_dir, resume = config_from_args(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.print_config:
        import yaml

        print(yaml.safe_dump(config_to_dict(config), sort_keys=False), end="")
        return 0
    try:
        trainer = Trainer(config, out_dir, resume=resume)
        path = trainer.fit()
        if trainer.dist.is_main:
            print(f"wrote {path}")
    except (ConfigError, FileExistsError, FileNotFoundError, NonFiniteLossError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        distributed.shutdown()
    return 0
