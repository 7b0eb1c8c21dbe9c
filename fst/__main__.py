"""``python -m fst``: the ``fst`` command."""

import sys

from fst.cli import main

sys.exit(main())
