"""behave-bstack: report behave runs to BrowserStack Test Reporting & Analytics.

`-f behave_bstack:BstackFormatter` (or the alias `bstack`) turns it on.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Imported lazily so that the uploader process and the CLI never import behave.
    if name == "BstackFormatter":
        from .formatter import BstackFormatter

        return BstackFormatter
    raise AttributeError(name)
