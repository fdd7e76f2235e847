"""``python -m haltgate``: the same as the ``haltgate`` command."""

import sys

from .cli import main

sys.exit(main())
