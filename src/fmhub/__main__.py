"""``python -m fmhub``: the ``fmhub`` command line (as the console script)."""

import sys

from fmhub.cli import main

sys.exit(main())
