"""`python -m core.cli` (torchrun launches training this way)."""

import sys

from core.cli import main

sys.exit(main())
