"""`python -m protloc` runs the console script."""

from protloc.cli import main

raise SystemExit(main())
