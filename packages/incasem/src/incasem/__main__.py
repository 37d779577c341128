"""Run the command line interface: ``python -m incasem``."""

from incasem.cli import main

raise SystemExit(main())
