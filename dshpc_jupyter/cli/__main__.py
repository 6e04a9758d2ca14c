"""``python -m dshpc_jupyter.cli``."""

import sys

from . import main

sys.exit(main())
