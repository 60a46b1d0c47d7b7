"""``python -m msjax``: the ``msjax`` command (``msjax.cli``)."""
import sys

from msjax.cli import main

if __name__ == "__main__":
    sys.exit(main())
