"""``python -m carriers.sim``: the SMSC simulator's command line."""

import sys

from carriers.sim.cli import main

sys.exit(main())
