"""``python -m pclkit ...`` entry point."""

from pclkit.cli import main

raise SystemExit(main())
