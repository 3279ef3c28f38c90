"""`python -m a2h_core ...`: the command line (see cli.py)."""
from a2h_core.cli import main

raise SystemExit(main())
