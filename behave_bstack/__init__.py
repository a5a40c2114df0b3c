"""behave-bstack: report behave runs to BrowserStack Test Reporting & Analytics.

`-f behave_bstack:BstackFormatter` (or the alias `bstack`) turns it on; step code and
environment.py may call attach(), set_custom_metadata() and set_environment().
"""

from .base.version import __version__ as __version__
from .recording.api import attach, set_custom_metadata, set_environment

__all__ = ["BstackFormatter", "attach", "set_custom_metadata", "set_environment"]


def __getattr__(name: str):
    # The formatter imports behave; loaded on first use so that the uploader process and
    # the command line never pay for it.
    if name == "BstackFormatter":
        from .formatter import BstackFormatter

        return BstackFormatter
    raise AttributeError(name)
