"""Resolving the settings: each value taken from the highest source that has a good one
(config.py's docstring lists the sources), every bad value turned into one line of
Settings.problems.  Runs in behave's process and in the command.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from ..base.defaults import DEFAULT_CONCURRENCY
from ..base.loopback import is_loopback
from .project import project_root
from .specs import (
    BUILD_NUMBER_ENV,
    CONCURRENCY_MAX,
    CONCURRENCY_MIN,
    DATE_TIME_FORMAT,
    DEFAULT_API_URL,
    DEFAULT_FLUSH_TIMEOUT,
    DEFAULT_JOURNAL_DIR,
    DEFAULT_KEEP_JOURNALS,
    DEFAULT_REQUEST_TIMEOUT,
    ENVIRONMENT_KEYS,
    MAX_BUILD_RUN_IDENTIFIER,
    PREFIX,
    SHOWN_ORDER,
    SPECS,
    STEP_HOOKS_CHOICES,
    SUGGEST_CUTOFF,
    USERDATA_KEYS,
    YML_NAMES,
    Settings,
    Spec,
    YmlPath,
)
from .values import (
    absent,
    display,
    expand,
    keep_identifier_vars,
    parse_bool,
    parse_tags,
    redact_url,
    scalar_text,
    scrub,
    yaml_error,
    yaml_type,
)

_CUSTOM_TAG_RE = re.compile(r"^CUSTOM_TAG_(\d+)$")
_HASHED_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # it becomes a URL path segment


class Resolver:
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
        self.problems.append(PREFIX + text)

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
        problems = tuple(scrub(p, self.access_key) for p in self.problems)
        return Settings(
            **settings_kwargs,
            sources=MappingProxyType(
                {k: self.sources[k] for k in SHOWN_ORDER if k in self.sources}
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
            reason = yaml_error(exc)
        else:
            data = {} if data is None else data
            if not isinstance(data, dict):
                reason = f"its top level is a {yaml_type(data)}, not a mapping of settings"
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

    def _yml_label(self, path: YmlPath) -> str:
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

    def _yml_raw(self, path: YmlPath) -> Any:
        node: Any = self.yml
        for part in path:
            if isinstance(part, int):
                if not isinstance(node, list) or len(node) <= part:
                    return None
            elif not isinstance(node, dict):
                return None
            node = node[part] if isinstance(part, int) else node.get(part)
        return node

    def _yml_value(self, path: YmlPath, special: Callable[[str], str | None] | None) -> Any:
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
            raw = expand(raw, lookup)
        elif isinstance(raw, list):
            raw = [expand(item, lookup) if isinstance(item, str) else item for item in raw]
        for name in dict.fromkeys(missing):
            self.problem(
                f"{self._yml_label(path)}: refers to ${{{name}}}, which is not set in the "
                "environment (expanded to an empty string)"
            )
        return raw

    # ---- generic resolution

    def _candidates(self, name: str) -> list[tuple[str, Any]]:
        spec = SPECS[name]
        found: list[tuple[str, Any]] = []
        key = f"bstack.{name}"
        if key in self.userdata:
            found.append((f"userdata {key}", self.userdata[key]))
        found += [(f"env {var}", self.environ[var]) for var in spec.env if var in self.environ]
        special = keep_identifier_vars if name == "build_identifier" else None
        from_yml = [
            (self._yml_label(path), self._yml_value(path, special))
            for path in spec.yml
            if self._yml_raw(path) is not None
        ]
        if name == "enabled":
            # testReporting and testObservability: either one set to false switches off.
            from_yml.sort(key=lambda c: parse_bool(c[1])[1] is not False)
        found += from_yml
        found += [
            (f"env {var}", self.environ[var]) for var in spec.generic_env if var in self.environ
        ]
        return [(label, raw) for label, raw in found if not absent(raw)]

    def resolve(self, name: str, default: Any, source_key: str | None = None) -> Any:
        """First usable value, highest source first; every unusable one is a problem line."""
        spec = SPECS[name]
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
            using = "nothing" if value is None else display(value)
            if spec.kind == "secret":
                using = "another value" if value else "nothing"
            origin = "" if label == "default" else f" from {label}"
            self.problem(f"{self._shown(spec, bad_label, raw)} {note} (using {using}{origin})")
        return value

    def _shown(self, spec: Spec, label: str, raw: Any) -> str:
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
            return parse_bool(raw)
        if kind == "tags":
            return parse_tags(raw)
        text = scalar_text(raw)
        if text is None:
            what = "a yes/no value" if isinstance(raw, bool) else f"a {yaml_type(raw)}"
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
        shown = redact_url(url)
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
                if not absent(self.environ.get(var)):
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
        value = expand(value, self._identifier_vars).strip()
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
                text = scalar_text(value)
                if text is None:
                    if not absent(value):
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
