"""Entry point of ``python -m flask_hyper.devbroker``."""

import sys

from .cli import main

sys.exit(main())
