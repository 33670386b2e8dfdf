"""`python -m corral` is the same as the `corral` console script."""

from corral.cli import main

raise SystemExit(main())
