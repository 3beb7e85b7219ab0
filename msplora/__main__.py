"""`python -m msplora`: the same command line as the `msplora` console script."""

from msplora.cli import main

raise SystemExit(main())
