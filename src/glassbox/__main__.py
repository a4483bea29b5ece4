"""``python -m glassbox``: the same command line as the ``glassbox`` script."""

import sys

from glassbox.cli.main import main

sys.exit(main())
