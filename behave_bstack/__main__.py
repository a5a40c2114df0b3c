"""`python -m behave_bstack`: the same as the `behave-bstack` command."""

import sys

from .command.main import main

if __name__ == "__main__":
    sys.exit(main())
