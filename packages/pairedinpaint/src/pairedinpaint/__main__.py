"""`python -m pairedinpaint` runs the console script."""

from pairedinpaint.cli import main

raise SystemExit(main())
