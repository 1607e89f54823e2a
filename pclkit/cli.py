"""Command line: ``python -m pclkit <command> [options]``.

Each command lives in its own module, which provides ``add_arguments(parser)``
and ``run(args) -> int``. Modules are imported only when their command runs, so
``python -m pclkit --help`` is fast and a missing optional dependency of one
command cannot break another.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: command name -> (module path, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "pretrain": ("pclkit.pretrain", "pretrain a method (pclkit.methods; presets: smoke, synth_cpu, paper)"),
    "evaluate": ("pclkit.evaluate", "linear evaluation of a checkpoint on the paper's four tasks"),
    "figures": ("pclkit.figures", "regenerate all figures headless"),
    "gallery": ("pclkit.gallery", "render the SynthFaces gallery figure"),
    "reproduce": ("pclkit.reproduce", "the main job: SimCLR vs PCL on SynthFaces (+ CMU faces)"),
    "bench": ("pclkit.bench", "throughput benchmarks (render, augment, train steps)"),
    "export-pretrained": ("pclkit.pretrained", "ship a run's weights inside the package (pclkit/weights + manifest)"),
    "import-reference": ("pclkit.reference_import", "convert a checkpoint of the public PCL code into a pclkit run"),
    "embed": ("pclkit.embed", "write F_s / F_f / F_p of a folder of images to .npz or .csv"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pclkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in COMMANDS:
        parser = build_parser()
        if argv and argv[0] not in {"-h", "--help"}:
            parser.error(f"unknown command {argv[0]!r}; choose one of: {', '.join(COMMANDS)}")
        parser.print_help()
        return 0 if argv else 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"python -m pclkit {name}", description=COMMANDS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
