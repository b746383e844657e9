"""``python -m resgp ...``: the ``resgp`` command (:func:`resgp.cli.main`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
