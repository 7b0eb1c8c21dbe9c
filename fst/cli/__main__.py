"""``python -m fst.cli``, as the tests and scripts run the command."""

import sys

from fst.cli import main

sys.exit(main())
