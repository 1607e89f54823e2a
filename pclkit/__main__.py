"""``python -m pclkit ...`` entry point."""

from pclkit.cli import main

# The guard matters: spawn-based multiprocessing (DataLoader workers, torchrun
# helpers) re-imports the main module and must not re-run the CLI.
if __name__ == "__main__":
    raise SystemExit(main())
