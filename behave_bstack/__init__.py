"""behave-bstack: report behave runs to BrowserStack Test Reporting & Analytics."""

__version__ = "0.1.0"
