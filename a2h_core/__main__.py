"""`python -m a2h_core ...`: the command line (see cli.py)."""
from .cli import main

raise SystemExit(main())
