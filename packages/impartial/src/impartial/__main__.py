"""`python -m impartial` runs the console script."""

from impartial.cli import main

raise SystemExit(main())
