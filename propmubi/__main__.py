"""``python -m propmubi`` is the ``propmubi`` command."""

import sys

from propmubi.cli import main

sys.exit(main())
