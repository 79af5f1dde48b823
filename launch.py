"""Open the aelab lab in a browser: ``python launch.py [--port N] [--share]``."""

from __future__ import annotations

import sys

from aelab.ui.launcher import main

if __name__ == "__main__":
    sys.exit(main())
