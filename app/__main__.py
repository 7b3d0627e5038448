"""`python -m app` starts the desktop app (same as the `os2d-studio-gui` script)."""

import sys

from app.main import main

sys.exit(main())
