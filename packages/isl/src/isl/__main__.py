"""Run the command line interface: ``python -m isl``."""

from isl.cli import main

raise SystemExit(main())
