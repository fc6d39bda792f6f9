"""``python -m invoker.worker``: the worker agent's command line."""

import sys

from invoker.worker.cli import main

sys.exit(main())
