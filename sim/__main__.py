"""``python -m sim``: see :mod:`sim.cli`."""

from .cli import main

raise SystemExit(main())
