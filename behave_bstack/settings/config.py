"""Settings for behave-bstack, resolved from the places users already configure BrowserStack.

Sources, highest first:

1. behave userdata keys ``bstack.<setting>`` (``-D bstack.x=y``, ``[behave.userdata]``,
   ``[tool.behave.userdata]``); values are always strings;
2. environment variables (BrowserStack's own names, plus ``BSTACK_*`` for this package's knobs);
3. ``browserstack.yml`` / ``browserstack.yaml`` in the working directory, or the file named by
   ``BROWSERSTACK_CONFIG_FILE`` (or ``-D bstack.config_file``);
4. generic environment variables that are not BrowserStack's (``HTTP_PROXY``, ``HTTPS_PROXY``,
   ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE``): a setting written for BrowserStack
   in browserstack.yml is more specific than a machine-wide default;
5. defaults.

``load_settings`` never raises on bad input: each bad value becomes one line in
``Settings.problems`` (naming the setting and where it came from) and the next source, or the
default, is used instead. A reporter must never stop a test run because of its configuration.

The access key never appears in ``repr()``, ``describe()``, ``problems`` or an exception.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..base.defaults import DEFAULT_CONCURRENCY
from ..base.loopback import is_loopback
from .project import project_root

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_JOURNAL_DIR",
    "DATE_TIME_FORMAT",
    "ENVIRONMENT_KEYS",
    "STEP_HOOKS_CHOICES",
    "Settings",
    "USERDATA_KEYS",
    "load_settings",
]

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
_PREFIX = ""
SUGGEST_CUTOFF = 0.75  # difflib ratio an unknown setting's name needs to get a suggestion
_BOOL_WORDS = {
    "true": True,
    "yes": True,
    "on": True,
    "1": True,
    "false": False,
    "no": False,
    "off": False,
    "0": False,
}
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CUSTOM_TAG_RE = re.compile(r"^CUSTOM_TAG_(\d+)$")
_HASHED_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # it becomes a URL path segment

_YmlPath = tuple[Any, ...]


@dataclass(frozen=True)
class _Spec:
    kind: str  # parser name, see _Resolver._parse
    env: tuple[str, ...] = ()
    yml: tuple[_YmlPath, ...] = ()
    generic_env: tuple[str, ...] = ()  # ranked below browserstack.yml


def _product_paths(key: str) -> tuple[_YmlPath, ...]:
    # testReporting* is the current product name and wins over the older testObservability*.
    return (("testReportingOptions", key), ("testObservabilityOptions", key), (key,))


def _platform_paths(key: str) -> tuple[_YmlPath, ...]:
    # The first platform wins over the root-level capability (root applies to every platform).
    return (("platforms", 0, key), (key,))


# Every setting a user can set; the keys are the userdata suffixes (bstack.<key>).
_SPECS: dict[str, _Spec] = {
    "enabled": _Spec(
        "bool",
        env=("BROWSERSTACK_TEST_REPORTING", "BROWSERSTACK_TEST_OBSERVABILITY"),
        yml=(("testReporting",), ("testObservability",)),
    ),
    "username": _Spec("text", env=("BROWSERSTACK_USERNAME",), yml=(("userName",),)),
    "access_key": _Spec("secret", env=("BROWSERSTACK_ACCESS_KEY",), yml=(("accessKey",),)),
    "api_url": _Spec("text", env=("BROWSERSTACK_API_URL",)),
    "project_name": _Spec(
        "text", env=("BROWSERSTACK_PROJECT_NAME",), yml=_product_paths("projectName")
    ),
    "build_name": _Spec("text", env=("BROWSERSTACK_BUILD_NAME",), yml=_product_paths("buildName")),
    "build_identifier": _Spec(
        "text", env=("BROWSERSTACK_BUILD_IDENTIFIER",), yml=(("buildIdentifier",),)
    ),
    "build_run_identifier": _Spec("run_id", env=("BROWSERSTACK_BUILD_RUN_IDENTIFIER",)),
    "build_hashed_id": _Spec("hashed_id", env=("BROWSERSTACK_BUILD_HASHED_ID",)),
    "build_tags": _Spec("tags", env=("BSTACK_BUILD_TAGS",), yml=_product_paths("buildTag")),
    "journal_dir": _Spec("dir", env=("BSTACK_JOURNAL_DIR",)),
    "keep_journals": _Spec("count", env=("BSTACK_KEEP_JOURNALS",)),
    "flush_timeout": _Spec("seconds", env=("BSTACK_FLUSH_TIMEOUT",)),
    "request_timeout": _Spec("positive_seconds", env=("BSTACK_REQUEST_TIMEOUT",)),
    "concurrency": _Spec("concurrency", env=("BSTACK_CONCURRENCY",)),
    "logs": _Spec("bool", env=("BSTACK_LOGS",)),
    "step_hooks": _Spec("step_hooks", env=("BSTACK_STEP_HOOKS",)),
    "report_excluded": _Spec("bool", env=("BSTACK_REPORT_EXCLUDED",)),
    "http_proxy": _Spec("text", yml=(("httpProxy",),), generic_env=("http_proxy", "HTTP_PROXY")),
    "https_proxy": _Spec(
        "text", yml=(("httpsProxy",),), generic_env=("https_proxy", "HTTPS_PROXY")
    ),
    "no_proxy": _Spec("text", generic_env=("no_proxy", "NO_PROXY")),
    "ca_bundle": _Spec(
        "file",
        env=("BROWSERSTACK_CA_BUNDLE",),
        yml=(("proxyCaCertificate",),),
        generic_env=("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"),
    ),
    "device": _Spec("text", env=("BROWSERSTACK_DEVICE",), yml=_platform_paths("deviceName")),
    "os": _Spec("text", env=("BROWSERSTACK_OS",), yml=_platform_paths("os")),
    "os_version": _Spec("text", env=("BROWSERSTACK_OS_VERSION",), yml=_platform_paths("osVersion")),
    "browser": _Spec("text", env=("BROWSERSTACK_BROWSER",), yml=_platform_paths("browserName")),
    "browser_version": _Spec(
        "text", env=("BROWSERSTACK_BROWSER_VERSION",), yml=_platform_paths("browserVersion")
    ),
    "debug": _Spec("bool", env=("BSTACK_DEBUG",)),
    # Where browserstack.yml is; resolved before the file is read, so it has no yml key.
    "config_file": _Spec("text", env=("BROWSERSTACK_CONFIG_FILE",)),
}

USERDATA_KEYS: tuple[str, ...] = tuple(f"bstack.{name}" for name in _SPECS)
# describe() rows and `sources` keys, in this order.
_SHOWN_ORDER: tuple[str, ...] = (
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
                value = _redact_url(value)
            elif f.name == "sources":
                value = dict(value)
            parts.append(f"{f.name}={value!r}")
        parts.insert(2, f"access_key={'<set>' if self.access_key else None}")
        return _scrub(f"Settings({', '.join(parts)})", self.access_key)

    __str__ = __repr__

    @property
    def has_credentials(self) -> bool:
        return bool(self.username and self.access_key)

    def describe(self) -> list[tuple[str, str, str]]:
        """(setting, value as shown, source) rows for a `--bstack-debug`-style dump."""
        src = self.sources
        key = f"set ({len(self.access_key)} chars)" if self.access_key else "not set"
        api_url = _redact_url(self.api_url)
        if not self.api_url_ok:
            api_url += " (not allowed, see problems)"
        rows = []
        for name in _SHOWN_ORDER:
            if name == "access_key":
                shown = key
            elif name == "api_url":
                shown = api_url
            elif name.startswith("environment."):
                shown = _fmt(self.environment.get(name.split(".", 1)[1]))
            elif name in ("http_proxy", "https_proxy") and getattr(self, name):
                shown = _redact_url(getattr(self, name))
            else:
                shown = _fmt(getattr(self, name))
            rows.append((name, _scrub(shown, self.access_key), src.get(name, "default")))
        return rows


def load_settings(
    userdata: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
    *,
    now: datetime | None = None,
) -> Settings:
    """Resolve every setting. Never raises; see `Settings.problems` for what was wrong.

    `now` (local time) is what ${DATE_TIME} expands to; it defaults to the current time.
    """
    environ = os.environ if environ is None else environ
    cwd = os.path.abspath(cwd if cwd is not None else os.getcwd())
    try:
        return _Resolver(userdata or {}, environ, cwd, now or datetime.now()).settings()
    except Exception as exc:  # a bug here must not stop the test run
        where = traceback.extract_tb(exc.__traceback__)[-1]
        problem = (
            f"{_PREFIX}internal error while reading settings ({type(exc).__name__} at "
            f"{os.path.basename(where.filename)}:{where.lineno}); using defaults"
        )
        return _default_settings(cwd, problem)


# --------------------------------------------------------------------------- resolution


class _Resolver:
    def __init__(
        self, userdata: Mapping[str, str], environ: Mapping[str, str], cwd: str, now: datetime
    ) -> None:
        self.userdata = userdata
        self.environ = environ
        self.cwd = cwd
        self.root = project_root(cwd, environ.get("HOME"))
        self.now = now
        self.problems: list[str] = []
        self.sources: dict[str, str] = {"project_root": "default"}  # project.py's rule
        self.yml: dict[str, Any] = {}
        self.yml_path: str | None = None
        self.yml_name = "browserstack.yml"
        self.access_key: str | None = None
        self.build_number_source = ""

    def problem(self, text: str) -> None:
        self.problems.append(_PREFIX + text)

    # ---- orchestration

    def settings(self) -> Settings:
        self._check_userdata_keys()
        self._load_yml()
        get = self.resolve
        username = get("username", None)
        self.access_key = get("access_key", None)
        api_url, api_url_ok = self._api_url()
        dirname = os.path.basename(self.root.rstrip(os.sep)) or "behave"
        build_name = get("build_name", dirname)
        identifier = self._build_identifier()
        if identifier:
            build_name = f"{build_name} {identifier}"
            self.sources["build_name"] += " + build_identifier"
        environment = {}
        for key in ENVIRONMENT_KEYS:
            value = self.resolve(key, None, source_key=f"environment.{key}")
            if value is not None:
                environment[key] = value
        settings_kwargs = dict(
            enabled=get("enabled", True),
            username=username,
            access_key=self.access_key,
            api_url=api_url,
            api_url_ok=api_url_ok,
            project_name=get("project_name", dirname),
            build_name=build_name,
            build_identifier=identifier,
            build_run_identifier=get("build_run_identifier", None),
            build_hashed_id=get("build_hashed_id", None),
            build_tags=self._build_tags(),
            journal_dir=get("journal_dir", os.path.join(self.root, DEFAULT_JOURNAL_DIR)),
            keep_journals=get("keep_journals", DEFAULT_KEEP_JOURNALS),
            flush_timeout=get("flush_timeout", DEFAULT_FLUSH_TIMEOUT),
            request_timeout=get("request_timeout", DEFAULT_REQUEST_TIMEOUT),
            concurrency=get("concurrency", DEFAULT_CONCURRENCY),
            logs=get("logs", True),
            step_hooks=get("step_hooks", "failed"),
            report_excluded=get("report_excluded", False),
            http_proxy=get("http_proxy", None),
            https_proxy=get("https_proxy", None),
            no_proxy=get("no_proxy", None),
            ca_bundle=get("ca_bundle", None),
            environment=environment,
            debug=get("debug", False),
            config_file=self.yml_path,
            project_root=self.root,
        )
        self._check_credentials(username)
        problems = tuple(_scrub(p, self.access_key) for p in self.problems)
        return Settings(
            **settings_kwargs,
            sources=MappingProxyType(
                {k: self.sources[k] for k in _SHOWN_ORDER if k in self.sources}
            ),
            problems=problems,
        )

    # ---- userdata keys

    def _check_userdata_keys(self) -> None:
        known = set(USERDATA_KEYS)
        for key in self.userdata:
            if not isinstance(key, str) or not key.startswith("bstack.") or key in known:
                continue
            # Compared without the "bstack." every key shares (with it, anything looks close
            # to a short key: bstack.nonsense to bstack.os).
            names = [known_key.split(".", 1)[1] for known_key in USERDATA_KEYS]
            suffix = key.split(".", 1)[1].lower()
            close = difflib.get_close_matches(suffix, names, n=1, cutoff=SUGGEST_CUTOFF)
            hint = f"; did you mean bstack.{close[0]}?" if close else ""
            self.problem(f"unknown setting {key} ignored{hint} (known: {', '.join(USERDATA_KEYS)})")

    # ---- browserstack.yml

    def _load_yml(self) -> None:
        explicit = self.resolve("config_file", None)
        if explicit is not None:
            origin = self.sources["config_file"]
            path = os.path.abspath(os.path.join(self.cwd, os.path.expanduser(explicit)))
            if not os.path.exists(path):
                self.problem(
                    f"{origin}={explicit!r} points to a missing file {path} "
                    "(no browserstack.yml is read)"
                )
                self.sources["config_file"] += " (missing file, see problems)"
                return
        else:
            found, where = [], "working directory"
            for folder, label in ((self.cwd, "working directory"), (self.root, "project root")):
                found = [
                    os.path.join(folder, n)
                    for n in YML_NAMES
                    if os.path.isfile(os.path.join(folder, n))
                ]
                if found:
                    where = label
                    break
            if not found:
                return
            path = found[0]
            if len(found) > 1:
                self.problem(f"both {found[0]} and {found[1]} exist (using {found[0]})")
            self.sources["config_file"] = where
        self.yml_name = os.path.basename(path)
        reason = None
        import yaml  # only when a yml exists: importing it costs behave's start-up ~10 ms

        try:
            with open(path, encoding="utf-8-sig") as fh:
                data = yaml.safe_load(fh)
        except UnicodeDecodeError:
            reason = "not UTF-8 text"
        except OSError as exc:
            reason = str(exc.strerror or exc)
        except yaml.YAMLError as exc:
            reason = _yaml_error(exc)
        else:
            data = {} if data is None else data
            if not isinstance(data, dict):
                reason = f"its top level is a {_yaml_type(data)}, not a mapping of settings"
        if reason:
            self.yml_path = path
            self.problem(f"{self._yml_shown()}: could not be read: {reason} (ignored)")
            self.yml_path = None
            self.sources["config_file"] += " (not read, see problems)"
            return
        self.yml, self.yml_path = data, path
        for key in ("testReportingOptions", "testObservabilityOptions"):
            if key in data and data[key] is not None and not isinstance(data[key], dict):
                self.problem(f"{self._yml_label((key,))}: not a mapping (ignored)")
        platforms = data.get("platforms")
        if platforms is not None and not (
            isinstance(platforms, list) and (not platforms or isinstance(platforms[0], dict))
        ):
            self.problem(f"{self._yml_label(('platforms',))}: not a list of mappings (ignored)")

    def _yml_label(self, path: _YmlPath) -> str:
        dotted = ""
        for part in path:
            dotted += f"[{part}]" if isinstance(part, int) else (f".{part}" if dotted else part)
        return f"{self._yml_shown()}: {dotted}"

    def _yml_shown(self) -> str:
        """The yml's path as messages show it: relative to the working directory when the
        file is below it (browserstack.yml, ci/bs.yml), else absolute."""
        path = self.yml_path or ""
        inside = path.startswith(self.cwd.rstrip(os.sep) + os.sep)
        return os.path.relpath(path, self.cwd) if inside else path

    def _yml_raw(self, path: _YmlPath) -> Any:
        node: Any = self.yml
        for part in path:
            if isinstance(part, int):
                if not isinstance(node, list) or len(node) <= part:
                    return None
            elif not isinstance(node, dict):
                return None
            node = node[part] if isinstance(part, int) else node.get(part)
        return node

    def _yml_value(self, path: _YmlPath, special: Callable[[str], str | None] | None) -> Any:
        """The value at `path` with ${VAR} references expanded in every string."""
        raw = self._yml_raw(path)
        missing: list[str] = []

        def lookup(name: str) -> str | None:
            value = special(name) if special else None
            if value is None:
                value = self.environ.get(name)
            if value is None:
                missing.append(name)
                return ""
            return value

        if isinstance(raw, str):
            raw = _expand(raw, lookup)
        elif isinstance(raw, list):
            raw = [_expand(item, lookup) if isinstance(item, str) else item for item in raw]
        for name in dict.fromkeys(missing):
            self.problem(
                f"{self._yml_label(path)}: refers to ${{{name}}}, which is not set in the "
                "environment (expanded to an empty string)"
            )
        return raw

    # ---- generic resolution

    def _candidates(self, name: str) -> list[tuple[str, Any]]:
        spec = _SPECS[name]
        found: list[tuple[str, Any]] = []
        key = f"bstack.{name}"
        if key in self.userdata:
            found.append((f"userdata {key}", self.userdata[key]))
        found += [(f"env {var}", self.environ[var]) for var in spec.env if var in self.environ]
        special = _keep_identifier_vars if name == "build_identifier" else None
        from_yml = [
            (self._yml_label(path), self._yml_value(path, special))
            for path in spec.yml
            if self._yml_raw(path) is not None
        ]
        if name == "enabled":
            # testReporting and testObservability: either one set to false switches off.
            from_yml.sort(key=lambda c: _parse_bool(c[1])[1] is not False)
        found += from_yml
        found += [
            (f"env {var}", self.environ[var]) for var in spec.generic_env if var in self.environ
        ]
        return [(label, raw) for label, raw in found if not _absent(raw)]

    def resolve(self, name: str, default: Any, source_key: str | None = None) -> Any:
        """First usable value, highest source first; every unusable one is a problem line."""
        spec = _SPECS[name]
        winner: tuple[str, Any] | None = None
        bad: list[tuple[str, Any, str]] = []
        for label, raw in self._candidates(name):
            ok, value, note = self._parse(spec.kind, raw)
            if not ok:
                bad.append((label, raw, note or "is not valid"))
            elif winner is None:
                winner = (label, value)
                if note:
                    self.problem(f"{self._shown(spec, label, raw)} {note}")
        label, value = winner if winner else ("default", default)
        self.sources[source_key or name] = label
        for bad_label, raw, note in bad:
            using = "nothing" if value is None else _fmt(value)
            if spec.kind == "secret":
                using = "another value" if value else "nothing"
            origin = "" if label == "default" else f" from {label}"
            self.problem(f"{self._shown(spec, bad_label, raw)} {note} (using {using}{origin})")
        return value

    def _shown(self, spec: _Spec, label: str, raw: Any) -> str:
        """A value and where it came from: `env X='v'`, or `<path>: <key>: 'v'` in the yml."""
        in_yml = bool(self.yml_path) and label.startswith(f"{self._yml_shown()}: ")
        if spec.kind == "secret":
            return f"{label}:" if in_yml else label
        text = raw if isinstance(raw, str) else repr(raw)
        if len(text) > 80:
            text = text[:77] + "..."
        shown = repr(text) if isinstance(raw, str) else text
        return f"{label}: {shown}" if in_yml else f"{label}={shown}"

    def _parse(self, kind: str, raw: Any) -> tuple[bool, Any, str | None]:
        """(usable, value, note): a note on a usable value says how it was adjusted."""
        if kind == "bool":
            return _parse_bool(raw)
        if kind == "tags":
            return _parse_tags(raw)
        text = _scalar_text(raw)
        if text is None:
            what = "a yes/no value" if isinstance(raw, bool) else f"a {_yaml_type(raw)}"
            return False, None, f"is {what}, not text"
        text = text.strip()
        if kind in ("text", "secret"):
            return True, text, None
        if kind in ("seconds", "positive_seconds"):
            try:
                number = float(text)
            except ValueError:
                return False, None, "is not a number"
            if not math.isfinite(number) or number < 0 or (kind != "seconds" and number == 0):
                need = "zero or more" if kind == "seconds" else "more than zero"
                return False, None, f"must be a number of seconds, {need}"
            return True, number, None
        if kind == "concurrency":
            try:
                number = int(text)
            except ValueError:
                return False, None, "is not a whole number"
            clamped = min(max(number, CONCURRENCY_MIN), CONCURRENCY_MAX)
            if clamped != number:
                return (
                    True,
                    clamped,
                    f"is outside {CONCURRENCY_MIN}..{CONCURRENCY_MAX} (using {clamped})",
                )
            return True, number, None
        if kind == "count":
            try:
                number = int(text)
            except ValueError:
                return False, None, "is not a whole number"
            if number < 0:
                return False, None, "must be 0 (keep every journal) or more"
            return True, number, None
        if kind == "step_hooks":
            if text.lower() in STEP_HOOKS_CHOICES:
                return True, text.lower(), None
            return False, None, f"is not one of {', '.join(STEP_HOOKS_CHOICES)}"
        if kind == "run_id":
            if len(text) > MAX_BUILD_RUN_IDENTIFIER:
                cut = text[:MAX_BUILD_RUN_IDENTIFIER]
                return (
                    True,
                    cut,
                    (
                        f"is longer than {MAX_BUILD_RUN_IDENTIFIER} characters "
                        f"(using the first {MAX_BUILD_RUN_IDENTIFIER}: {cut!r})"
                    ),
                )
            return True, text, None
        if kind == "hashed_id":
            if _HASHED_ID_RE.match(text):
                return True, text, None
            return False, None, "is not a build id (letters, digits, '-' and '_' only)"
        if kind == "dir":
            return True, os.path.abspath(os.path.join(self.cwd, os.path.expanduser(text))), None
        if kind == "file":
            path = os.path.abspath(os.path.join(self.cwd, os.path.expanduser(text)))
            if not os.path.exists(path):
                return False, None, f"does not exist ({path})"
            if not os.path.isfile(path):
                return False, None, f"is not a file ({path})"
            return True, path, None
        raise ValueError(f"unknown kind {kind}")

    # ---- settings with extra rules

    def _api_url(self) -> tuple[str, bool]:
        url = self.resolve("api_url", DEFAULT_API_URL).rstrip("/")
        origin = self.sources["api_url"]
        shown = _redact_url(url)
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            parts, host = None, None
        if parts is None or parts.scheme.lower() not in ("http", "https") or not host:
            self.problem(
                f"{origin}={shown!r} is not an http(s) URL "
                "(nothing is sent until it is fixed; the journal is kept)"
            )
            return url, False
        if parts.username is not None or parts.password is not None:
            self.problem(
                f"{origin}={shown!r} must not contain credentials; use the username and "
                "access key settings (nothing is sent until it is fixed; the journal is kept)"
            )
            return url, False
        if parts.scheme.lower() == "http" and not is_loopback(host):
            self.problem(
                f"{origin}={shown!r} uses plain http:// to a host that is not this machine; "
                "not allowed because the access key would travel unencrypted, use https:// "
                "(nothing is sent until it is fixed; the journal is kept)"
            )
            return url, False
        return url, True

    def _identifier_vars(self, name: str) -> str | None:
        if name == "DATE_TIME":
            return self.now.strftime(DATE_TIME_FORMAT)
        if name == "BUILD_NUMBER":
            for var in BUILD_NUMBER_ENV:
                if not _absent(self.environ.get(var)):
                    self.build_number_source = f"env {var}"
                    return self.environ[var].strip()
            self.build_number_source = "${DATE_TIME}, no build number in the environment"
            return self.now.strftime(DATE_TIME_FORMAT)
        return None

    def _build_identifier(self) -> str | None:
        value = self.resolve("build_identifier", None)
        if value is None:
            return None
        # Only the winning value is expanded, so `sources` names the build number it used.
        value = _expand(value, self._identifier_vars).strip()
        if self.build_number_source:
            self.sources["build_identifier"] += (
                f"; ${{BUILD_NUMBER}} from {self.build_number_source}"
            )
        return value or None

    def _build_tags(self) -> tuple[str, ...]:
        tags = list(self.resolve("build_tags", ()))
        labels = [] if self.sources["build_tags"] == "default" else [self.sources["build_tags"]]
        custom: dict[int, tuple[str, str]] = {}
        for key in self.yml:
            match = _CUSTOM_TAG_RE.match(key) if isinstance(key, str) else None
            if match:
                value = self._yml_value((key,), None)
                text = _scalar_text(value)
                if text is None:
                    if not _absent(value):
                        self.problem(f"{self._yml_label((key,))}: not text (ignored)")
                    continue
                custom[int(match.group(1))] = (text.strip(), self._yml_label((key,)))
        for key, value in self.environ.items():
            match = _CUSTOM_TAG_RE.match(key)
            if match:
                custom[int(match.group(1))] = (value.strip(), f"env {key}")
        for n in sorted(custom):
            value, label = custom[n]
            if value:
                tags.append(value)
                labels.append(label)
        self.sources["build_tags"] = "; ".join(labels) or "default"
        return tuple(dict.fromkeys(tags))

    def _check_credentials(self, username: str | None) -> None:
        how_key = "BROWSERSTACK_ACCESS_KEY, -D bstack.access_key or accessKey in browserstack.yml"
        how_user = "BROWSERSTACK_USERNAME, -D bstack.username or userName in browserstack.yml"
        if username and not self.access_key:
            self.problem(
                f"the BrowserStack username is set ({self.sources['username']}) but the access "
                f"key is missing; set {how_key}"
            )
        elif self.access_key and not username:
            self.problem(
                f"the BrowserStack access key is set ({self.sources['access_key']}) but the "
                f"username is missing; set {how_user}"
            )


# --------------------------------------------------------------------------- helpers


def _absent(raw: Any) -> bool:
    # An empty value counts as unset: CI systems often export empty variables.
    if isinstance(raw, str):
        return not raw.strip()
    return raw is None or raw == []


def _scalar_text(raw: Any) -> str | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (str, int, float, date)):
        return str(raw)
    return None


def _parse_bool(raw: Any) -> tuple[bool, Any, str | None]:
    if isinstance(raw, bool):
        return True, raw, None
    if isinstance(raw, (str, int)) and str(raw).strip().lower() in _BOOL_WORDS:
        return True, _BOOL_WORDS[str(raw).strip().lower()], None
    return False, None, "is not a yes/no value (true/false, yes/no, on/off, 1/0)"


def _parse_tags(raw: Any) -> tuple[bool, Any, str | None]:
    items = raw if isinstance(raw, list) else [raw]
    tags: list[str] = []
    for item in items:
        text = _scalar_text(item)
        if text is None:
            return False, None, "is not a tag or a list of tags"
        # A single string may hold several comma-separated tags (-D bstack.build_tags=a,b).
        tags += [t.strip() for t in text.split(",") if t.strip()] if item is raw else [text.strip()]
    return True, tuple(t for t in tags if t), None


def _keep_identifier_vars(name: str) -> str | None:
    # Left for _Resolver._build_identifier, which expands them in the value that wins.
    return f"${{{name}}}" if name in ("BUILD_NUMBER", "DATE_TIME") else None


def _expand(text: str, lookup: Callable[[str], str | None]) -> str:
    def repl(match: re.Match[str]) -> str:
        value = lookup(match.group(1))
        return match.group(0) if value is None else value

    return _VAR_RE.sub(repl, text)


def _redact_url(url: str) -> str:
    """The URL without any user:password part (proxies often carry one)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"****@{host}"))


def _yaml_error(exc: Exception) -> str:
    # Never str(exc): PyYAML quotes the offending source line, which may hold the access key.
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"invalid YAML: {problem} at line {mark.line + 1}, column {mark.column + 1}"
    return f"invalid YAML ({type(exc).__name__})"


def _yaml_type(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _fmt(value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ", ".join(value) if value else "none"
    return str(value)


def _scrub(text: str, secret: str | None) -> str:
    # Defence in depth: should a value ever echo the access key (say through ${VAR}),
    # hide it. Very short keys are not real keys and would mangle unrelated text.
    if secret and len(secret) >= 6:
        return text.replace(secret, "****")
    return text


def _default_settings(cwd: str, problem: str) -> Settings:
    root = project_root(cwd)
    name = os.path.basename(root.rstrip(os.sep)) or "behave"
    return Settings(
        enabled=True,
        username=None,
        access_key=None,
        api_url=DEFAULT_API_URL,
        api_url_ok=True,
        project_name=name,
        build_name=name,
        build_identifier=None,
        build_run_identifier=None,
        build_hashed_id=None,
        build_tags=(),
        journal_dir=os.path.join(root, DEFAULT_JOURNAL_DIR),
        keep_journals=DEFAULT_KEEP_JOURNALS,
        flush_timeout=DEFAULT_FLUSH_TIMEOUT,
        request_timeout=DEFAULT_REQUEST_TIMEOUT,
        concurrency=DEFAULT_CONCURRENCY,
        logs=True,
        step_hooks="failed",
        report_excluded=False,
        http_proxy=None,
        https_proxy=None,
        no_proxy=None,
        ca_bundle=None,
        environment={},
        debug=False,
        config_file=None,
        sources=MappingProxyType({}),
        problems=(problem,),
        project_root=root,
    )
