"""``python -m aelab``: the same command as ``aelab`` (and what torchrun starts with ``-m aelab``)."""

import sys

from .cli import main

sys.exit(main())
