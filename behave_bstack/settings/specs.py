"""What settings there are: each one's names in userdata, the environment and
browserstack.yml, its kind and default, the order `doctor` shows them in, and the resolved
Settings.  Runs in behave's process and in the command.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .values import display, redact_url, scrub

DEFAULT_API_URL = "https://api-automation.browserstack.com"
DEFAULT_JOURNAL_DIR = os.path.join(".behave-bstack", "journal")
DEFAULT_FLUSH_TIMEOUT = 30.0
DEFAULT_REQUEST_TIMEOUT = 15.0
DEFAULT_KEEP_JOURNALS = 20  # fully delivered journals kept; older ones are removed (0: all kept)
CONCURRENCY_MIN, CONCURRENCY_MAX = 1, 64
MAX_BUILD_RUN_IDENTIFIER = 64  # tra-api.md §2.1
STEP_HOOKS_CHOICES = ("failed", "all", "off")
ENVIRONMENT_KEYS = ("device", "os", "os_version", "browser", "browser_version")
# ${DATE_TIME} in buildIdentifier: sortable and safe in a build name (no spaces, no colons).
DATE_TIME_FORMAT = "%Y-%m-%d-%H-%M"
# ${BUILD_NUMBER}: BUILD_NUMBER (Jenkins and the SDK's convention), then the run counters of
# common CI services; with none of them set, the ${DATE_TIME} value keeps the name unique.
BUILD_NUMBER_ENV = (
    "BUILD_NUMBER",
    "GITHUB_RUN_NUMBER",
    "CI_PIPELINE_IID",
    "CIRCLE_BUILD_NUM",
    "BITBUCKET_BUILD_NUMBER",
    "BUILDKITE_BUILD_NUMBER",
    "TRAVIS_BUILD_NUMBER",
    "BUILD_BUILDNUMBER",
)
YML_NAMES = ("browserstack.yml", "browserstack.yaml")

# Problems are plain sentences; whoever prints one puts "behave-bstack: " before it (the
# one prefix of every message, README "Messages").  Those about browserstack.yml read
# "<path>: <key>: <problem>".
PREFIX = ""
SUGGEST_CUTOFF = 0.75  # difflib ratio an unknown setting's name needs to get a suggestion
YmlPath = tuple[Any, ...]


@dataclass(frozen=True)
class Spec:
    kind: str  # parser name, see Resolver._parse
    env: tuple[str, ...] = ()
    yml: tuple[YmlPath, ...] = ()
    generic_env: tuple[str, ...] = ()  # ranked below browserstack.yml


def _product_paths(key: str) -> tuple[YmlPath, ...]:
    # testReporting* is the current product name and wins over the older testObservability*.
    return (("testReportingOptions", key), ("testObservabilityOptions", key), (key,))


def _platform_paths(key: str) -> tuple[YmlPath, ...]:
    # The first platform wins over the root-level capability (root applies to every platform).
    return (("platforms", 0, key), (key,))


# Every setting a user can set; the keys are the userdata suffixes (bstack.<key>).
SPECS: dict[str, Spec] = {
    "enabled": Spec(
        "bool",
        env=("BROWSERSTACK_TEST_REPORTING", "BROWSERSTACK_TEST_OBSERVABILITY"),
        yml=(("testReporting",), ("testObservability",)),
    ),
    "username": Spec("text", env=("BROWSERSTACK_USERNAME",), yml=(("userName",),)),
    "access_key": Spec("secret", env=("BROWSERSTACK_ACCESS_KEY",), yml=(("accessKey",),)),
    "api_url": Spec("text", env=("BROWSERSTACK_API_URL",)),
    "project_name": Spec(
        "text", env=("BROWSERSTACK_PROJECT_NAME",), yml=_product_paths("projectName")
    ),
    "build_name": Spec("text", env=("BROWSERSTACK_BUILD_NAME",), yml=_product_paths("buildName")),
    "build_identifier": Spec(
        "text", env=("BROWSERSTACK_BUILD_IDENTIFIER",), yml=(("buildIdentifier",),)
    ),
    "build_run_identifier": Spec("run_id", env=("BROWSERSTACK_BUILD_RUN_IDENTIFIER",)),
    "build_hashed_id": Spec("hashed_id", env=("BROWSERSTACK_BUILD_HASHED_ID",)),
    "build_tags": Spec("tags", env=("BSTACK_BUILD_TAGS",), yml=_product_paths("buildTag")),
    "journal_dir": Spec("dir", env=("BSTACK_JOURNAL_DIR",)),
    "keep_journals": Spec("count", env=("BSTACK_KEEP_JOURNALS",)),
    "flush_timeout": Spec("seconds", env=("BSTACK_FLUSH_TIMEOUT",)),
    "request_timeout": Spec("positive_seconds", env=("BSTACK_REQUEST_TIMEOUT",)),
    "concurrency": Spec("concurrency", env=("BSTACK_CONCURRENCY",)),
    "logs": Spec("bool", env=("BSTACK_LOGS",)),
    "step_hooks": Spec("step_hooks", env=("BSTACK_STEP_HOOKS",)),
    "report_excluded": Spec("bool", env=("BSTACK_REPORT_EXCLUDED",)),
    "http_proxy": Spec("text", yml=(("httpProxy",),), generic_env=("http_proxy", "HTTP_PROXY")),
    "https_proxy": Spec("text", yml=(("httpsProxy",),), generic_env=("https_proxy", "HTTPS_PROXY")),
    "no_proxy": Spec("text", generic_env=("no_proxy", "NO_PROXY")),
    "ca_bundle": Spec(
        "file",
        env=("BROWSERSTACK_CA_BUNDLE",),
        yml=(("proxyCaCertificate",),),
        generic_env=("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"),
    ),
    "device": Spec("text", env=("BROWSERSTACK_DEVICE",), yml=_platform_paths("deviceName")),
    "os": Spec("text", env=("BROWSERSTACK_OS",), yml=_platform_paths("os")),
    "os_version": Spec("text", env=("BROWSERSTACK_OS_VERSION",), yml=_platform_paths("osVersion")),
    "browser": Spec("text", env=("BROWSERSTACK_BROWSER",), yml=_platform_paths("browserName")),
    "browser_version": Spec(
        "text", env=("BROWSERSTACK_BROWSER_VERSION",), yml=_platform_paths("browserVersion")
    ),
    "debug": Spec("bool", env=("BSTACK_DEBUG",)),
    # Where browserstack.yml is; resolved before the file is read, so it has no yml key.
    "config_file": Spec("text", env=("BROWSERSTACK_CONFIG_FILE",)),
}

USERDATA_KEYS: tuple[str, ...] = tuple(f"bstack.{name}" for name in SPECS)
# describe() rows and `sources` keys, in this order.
SHOWN_ORDER: tuple[str, ...] = (
    "enabled",
    "username",
    "access_key",
    "api_url",
    "project_name",
    "build_name",
    "build_identifier",
    "build_run_identifier",
    "build_hashed_id",
    "build_tags",
    "project_root",
    "journal_dir",
    "keep_journals",
    "flush_timeout",
    "request_timeout",
    "concurrency",
    "logs",
    "step_hooks",
    "report_excluded",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "ca_bundle",
    *(f"environment.{key}" for key in ENVIRONMENT_KEYS),
    "debug",
    "config_file",
)


@dataclass(frozen=True)
class Settings:
    """Resolved settings; build with `load_settings`.

    `build_name` is the final build name sent to the API: when a build identifier is set it is
    already appended (``"<name> <identifier>"``, like BrowserStack's SDK), so never append
    `build_identifier` again. `api_url_ok` is False when `api_url` must not be used (not
    http(s), or plain http to a non-loopback host); `enabled` is not changed by that.
    """

    enabled: bool
    username: str | None
    access_key: str | None = field(repr=False)
    api_url: str
    api_url_ok: bool
    project_name: str
    build_name: str
    build_identifier: str | None
    build_run_identifier: str | None
    build_hashed_id: str | None
    build_tags: tuple[str, ...]
    journal_dir: str
    keep_journals: int
    flush_timeout: float
    request_timeout: float
    concurrency: int
    logs: bool
    step_hooks: str
    report_excluded: bool
    http_proxy: str | None
    https_proxy: str | None
    no_proxy: str | None
    ca_bundle: str | None
    environment: dict[str, str]
    debug: bool
    config_file: str | None  # the browserstack.yml actually read, absolute
    sources: Mapping[str, str]
    problems: tuple[str, ...]
    # What file names and default names are relative to (project.py); absolute.
    project_root: str = ""

    def __repr__(self) -> str:
        # Proxy URLs may carry a password; the access key is left out entirely.
        parts = []
        for f in fields(self):
            if not f.repr:
                continue
            value = getattr(self, f.name)
            if f.name in ("api_url", "http_proxy", "https_proxy") and value:
                value = redact_url(value)
            elif f.name == "sources":
                value = dict(value)
            parts.append(f"{f.name}={value!r}")
        parts.insert(2, f"access_key={'<set>' if self.access_key else None}")
        return scrub(f"Settings({', '.join(parts)})", self.access_key)

    __str__ = __repr__

    @property
    def has_credentials(self) -> bool:
        return bool(self.username and self.access_key)

    def describe(self) -> list[tuple[str, str, str]]:
        """(setting, value as shown, source) rows for a `--bstack-debug`-style dump."""
        src = self.sources
        key = f"set ({len(self.access_key)} chars)" if self.access_key else "not set"
        api_url = redact_url(self.api_url)
        if not self.api_url_ok:
            api_url += " (not allowed, see problems)"
        rows = []
        for name in SHOWN_ORDER:
            if name == "access_key":
                shown = key
            elif name == "api_url":
                shown = api_url
            elif name.startswith("environment."):
                shown = display(self.environment.get(name.split(".", 1)[1]))
            elif name in ("http_proxy", "https_proxy") and getattr(self, name):
                shown = redact_url(getattr(self, name))
            else:
                shown = display(getattr(self, name))
            rows.append((name, scrub(shown, self.access_key), src.get(name, "default")))
        return rows
