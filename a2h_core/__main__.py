"""`python -m a2h_core ...`: the command line (see a2h_core.cli)."""
from a2h_core.cli import main

raise SystemExit(main())
