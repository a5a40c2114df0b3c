"""The package's version (pyproject.toml says the same), for build_start's framework
details and `behave-bstack --version`."""

__version__ = "0.1.0"
