"""Tests for behave_bstack.settings.config: sources, precedence, browserstack.yml, bad input, redaction."""

from __future__ import annotations

import dataclasses
import itertools
import os
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from behave_bstack.settings import config
from behave_bstack.settings.config import DEFAULT_API_URL, USERDATA_KEYS, Settings, load_settings

NOW = datetime(2026, 11, 28, 20, 45, 7)
SECRET = "Sup3rSecretAccessKey42"


def load(tmp_path, userdata=None, environ=None, yml=None, name="browserstack.yml") -> Settings:
    if yml is not None:
        (tmp_path / name).write_text(yml, encoding="utf-8")
    return load_settings(userdata or {}, environ or {}, str(tmp_path), now=NOW)


def problems_text(s: Settings) -> str:
    return "\n".join(s.problems)


# --------------------------------------------------------------------------- defaults


def test_defaults(tmp_path):
    s = load(tmp_path)
    assert s.problems == ()
    assert s.enabled is True
    assert s.username is None and s.access_key is None and not s.has_credentials
    assert s.api_url == DEFAULT_API_URL and s.api_url_ok
    assert s.project_name == tmp_path.name == s.build_name
    assert s.build_identifier is None and s.build_run_identifier is None
    assert s.build_hashed_id is None and s.build_tags == ()
    assert s.journal_dir == os.path.join(str(tmp_path), ".behave-bstack", "journal")
    assert (s.flush_timeout, s.request_timeout, s.concurrency) == (30.0, 15.0, 32)
    assert s.logs is True and s.step_hooks == "failed" and s.report_excluded is False
    assert s.http_proxy is s.https_proxy is s.no_proxy is s.ca_bundle is None
    assert s.environment == {} and s.debug is False and s.config_file is None
    assert set(s.sources.values()) == {"default"}


def test_explicit_environ_never_reads_os_environ(tmp_path, monkeypatch):
    monkeypatch.setenv("BROWSERSTACK_USERNAME", "from-real-env")
    assert load(tmp_path, environ={}).username is None


def test_settings_are_immutable(tmp_path):
    s = load(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.enabled = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.sources["enabled"] = "x"  # type: ignore[index]


# --------------------------------------------------------------------------- precedence

# (setting, userdata key, env var, yml text producing the value, how to read the setting)
THREE_SOURCE_SETTINGS = [
    ("username", "BROWSERSTACK_USERNAME", "userName: {v}\n", lambda s: s.username),
    ("project_name", "BROWSERSTACK_PROJECT_NAME", "projectName: {v}\n", lambda s: s.project_name),
    ("build_name", "BROWSERSTACK_BUILD_NAME", "buildName: {v}\n", lambda s: s.build_name),
    (
        "build_identifier",
        "BROWSERSTACK_BUILD_IDENTIFIER",
        "buildIdentifier: {v}\n",
        lambda s: s.build_identifier,
    ),
    (
        "browser",
        "BROWSERSTACK_BROWSER",
        "platforms:\n  - browserName: {v}\n",
        lambda s: s.environment.get("browser"),
    ),
    ("enabled", "BROWSERSTACK_TEST_REPORTING", "testReporting: {v}\n", lambda s: s.enabled),
]
SUBSETS = [c for n in (1, 2, 3) for c in itertools.combinations(("userdata", "env", "yml"), n)]


@pytest.mark.parametrize("present", SUBSETS, ids=lambda c: "+".join(c))
@pytest.mark.parametrize(
    "name,env_var,yml_tpl,read", THREE_SOURCE_SETTINGS, ids=[t[0] for t in THREE_SOURCE_SETTINGS]
)
def test_precedence_userdata_env_yml(tmp_path, present, name, env_var, yml_tpl, read):
    winner = present[0]
    if name == "enabled":  # the default is on: the winner says off, every lower source says on
        values = {"userdata": "on", "env": "yes", "yml": "true"}
        values[winner] = {"userdata": "off", "env": "no", "yml": "false"}[winner]
        expected = False
    else:
        values = {"userdata": "from-ud", "env": "from-env", "yml": "from-yml"}
        expected = values[winner]
    s = load(
        tmp_path,
        userdata={f"bstack.{name}": values["userdata"]} if "userdata" in present else None,
        environ={env_var: values["env"]} if "env" in present else None,
        yml=yml_tpl.format(v=values["yml"]) if "yml" in present else None,
    )
    assert read(s) == expected
    source = s.sources[f"environment.{name}" if name == "browser" else name]
    prefix = {"userdata": f"userdata bstack.{name}", "env": f"env {env_var}", "yml": "browserstack"}
    assert source.startswith(prefix[winner])
    assert [p for p in s.problems if "access key is missing" not in p] == []


@pytest.mark.parametrize(
    "name,env_var,value,read,expected",
    [
        ("flush_timeout", "BSTACK_FLUSH_TIMEOUT", "2.5", lambda s: s.flush_timeout, 2.5),
        ("request_timeout", "BSTACK_REQUEST_TIMEOUT", "4", lambda s: s.request_timeout, 4.0),
        ("concurrency", "BSTACK_CONCURRENCY", "3", lambda s: s.concurrency, 3),
        ("logs", "BSTACK_LOGS", "off", lambda s: s.logs, False),
        ("step_hooks", "BSTACK_STEP_HOOKS", "ALL", lambda s: s.step_hooks, "all"),
        ("report_excluded", "BSTACK_REPORT_EXCLUDED", "yes", lambda s: s.report_excluded, True),
        ("debug", "BSTACK_DEBUG", "1", lambda s: s.debug, True),
        ("build_run_identifier", "BROWSERSTACK_BUILD_RUN_IDENTIFIER", "shard", None, "shard"),
        ("build_hashed_id", "BROWSERSTACK_BUILD_HASHED_ID", "abc123", None, "abc123"),
        ("api_url", "BROWSERSTACK_API_URL", "http://127.0.0.1:9", None, "http://127.0.0.1:9"),
        ("access_key", "BROWSERSTACK_ACCESS_KEY", "k3y-value", None, "k3y-value"),
    ],
)
def test_own_knobs_userdata_beats_env_beats_default(tmp_path, name, env_var, value, read, expected):
    def get(s):
        return read(s) if read else getattr(s, name)

    default = get(load(tmp_path))
    assert default != expected
    from_env = load(tmp_path, environ={env_var: value})
    assert get(from_env) == expected and from_env.sources[name] == f"env {env_var}"
    # userdata wins over env: env holds a different valid value or garbage that is never used
    other = {"logs": "on", "report_excluded": "no", "debug": "0", "step_hooks": "off"}
    env_value = other.get(name, "1" if name in ("concurrency",) else value + "0")
    both = load(tmp_path, userdata={f"bstack.{name}": value}, environ={env_var: env_value})
    assert get(both) == expected and both.sources[name] == f"userdata bstack.{name}"


def test_journal_dir_relative_to_cwd_and_precedence(tmp_path):
    s = load(tmp_path, environ={"BSTACK_JOURNAL_DIR": "out/j"})
    assert s.journal_dir == os.path.join(str(tmp_path), "out", "j")
    s = load(
        tmp_path,
        userdata={"bstack.journal_dir": str(tmp_path / "abs")},
        environ={"BSTACK_JOURNAL_DIR": "out/j"},
    )
    assert s.journal_dir == str(tmp_path / "abs")


def test_empty_values_count_as_unset(tmp_path):
    s = load(
        tmp_path,
        userdata={"bstack.build_name": "  "},
        environ={"BROWSERSTACK_BUILD_NAME": ""},
        yml="buildName: from-yml\n",
    )
    assert s.build_name == "from-yml"


def test_values_are_stripped(tmp_path):
    s = load(
        tmp_path, environ={"BROWSERSTACK_USERNAME": " bob\n", "BROWSERSTACK_ACCESS_KEY": "k\n"}
    )
    assert (s.username, s.access_key) == ("bob", "k")


@pytest.mark.parametrize(
    "word,expected",
    [(w, True) for w in ("true", "YES", "On", "1")]
    + [(w, False) for w in ("False", "no", "OFF", "0")],
)
def test_boolean_words(tmp_path, word, expected):
    s = load(tmp_path, userdata={"bstack.debug": word, "bstack.logs": word})
    assert s.debug is expected and s.logs is expected and s.problems == ()


# --------------------------------------------------------------------------- proxies and CA


def test_proxy_sources(tmp_path):
    env = {"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:1", "NO_PROXY": "x.local"}
    s = load(tmp_path, environ=env)
    assert s.http_proxy == "http://lower:1" and s.sources["http_proxy"] == "env http_proxy"
    assert s.no_proxy == "x.local"
    # browserstack.yml is specific to BrowserStack, so it ranks above the machine-wide variables
    s = load(tmp_path, environ=env, yml="httpProxy: http://yml:2\nhttpsProxy: http://ymls:3\n")
    assert (s.http_proxy, s.https_proxy) == ("http://yml:2", "http://ymls:3")
    s = load(tmp_path, userdata={"bstack.http_proxy": "http://ud:4"}, environ=env)
    assert s.http_proxy == "http://ud:4"
    (tmp_path / "browserstack.yml").unlink()
    s = load(tmp_path, environ={"HTTPS_PROXY": "http://p:5"})
    assert s.https_proxy == "http://p:5" and s.sources["https_proxy"] == "env HTTPS_PROXY"


def test_ca_bundle_chain(tmp_path):
    files = {}
    for n in ("ud", "bs", "yml", "req", "ssl"):
        files[n] = tmp_path / f"{n}.pem"
        files[n].write_text("-----", encoding="ascii")
    env = {
        "BROWSERSTACK_CA_BUNDLE": str(files["bs"]),
        "REQUESTS_CA_BUNDLE": str(files["req"]),
        "SSL_CERT_FILE": str(files["ssl"]),
    }
    yml = "proxyCaCertificate: yml.pem\n"  # relative to the working directory
    assert load(tmp_path, {"bstack.ca_bundle": "ud.pem"}, env, yml).ca_bundle == str(files["ud"])
    assert load(tmp_path, None, env, yml).ca_bundle == str(files["bs"])
    del env["BROWSERSTACK_CA_BUNDLE"]
    assert load(tmp_path, None, env, yml).ca_bundle == str(files["yml"])
    (tmp_path / "browserstack.yml").unlink()
    assert load(tmp_path, None, env).ca_bundle == str(files["req"])
    del env["REQUESTS_CA_BUNDLE"]
    assert load(tmp_path, None, env).ca_bundle == str(files["ssl"])


def test_missing_ca_bundle_is_a_problem_and_falls_back(tmp_path):
    (tmp_path / "ok.pem").write_text("x", encoding="ascii")
    s = load(
        tmp_path,
        environ={"BROWSERSTACK_CA_BUNDLE": "nope.pem", "SSL_CERT_FILE": str(tmp_path / "ok.pem")},
    )
    assert s.ca_bundle == str(tmp_path / "ok.pem")
    (line,) = s.problems
    assert "env BROWSERSTACK_CA_BUNDLE='nope.pem' does not exist" in line
    assert "using " + str(tmp_path / "ok.pem") in line
    s = load(tmp_path, userdata={"bstack.ca_bundle": str(tmp_path)})
    assert s.ca_bundle is None and "is not a file" in problems_text(s)


# --------------------------------------------------------------------------- browserstack.yml

FULL_YML = """\
userName: yml-user
accessKey: yml-key
projectName: yml-project
buildName: yml-build
buildIdentifier: 'ci-${BUILD_NUMBER}'
buildTag:
  - smoke
  - nightly
CUSTOM_TAG_1: custom-one
httpProxy: http://proxy:3128
httpsProxy: http://sproxy:3129
platforms:
  - browserName: chrome
    browserVersion: latest
    os: Windows
    osVersion: 11
    deviceName: Desktop
  - browserName: firefox
browserstackLocal: true
parallelsPerPlatform: 4
framework: behave
"""


def test_every_yml_key(tmp_path):
    s = load(tmp_path, environ={"BUILD_NUMBER": "77"}, yml=FULL_YML)
    assert s.problems == ()
    assert (s.username, s.access_key) == ("yml-user", "yml-key") and s.has_credentials
    assert s.project_name == "yml-project"
    assert s.build_identifier == "ci-77" and s.build_name == "yml-build ci-77"
    assert s.build_tags == ("smoke", "nightly", "custom-one")
    assert (s.http_proxy, s.https_proxy) == ("http://proxy:3128", "http://sproxy:3129")
    assert s.environment == {
        "browser": "chrome",
        "browser_version": "latest",
        "os": "Windows",
        "os_version": "11",
        "device": "Desktop",
    }
    path = str(tmp_path / "browserstack.yml")
    assert s.config_file == path
    assert s.sources["project_name"] == "browserstack.yml: projectName"
    assert s.sources["environment.os"] == "browserstack.yml: platforms[0].os"
    assert s.enabled is True


def test_root_level_platform_capabilities_are_the_fallback(tmp_path):
    s = load(tmp_path, yml="browserName: safari\nos: OS X\nplatforms:\n  - os: Windows\n")
    assert s.environment == {"browser": "safari", "os": "Windows"}


def test_environment_precedence_per_key(tmp_path):
    s = load(
        tmp_path,
        userdata={"bstack.os": "Linux"},
        environ={"BROWSERSTACK_BROWSER_VERSION": "120", "BROWSERSTACK_DEVICE": "Pixel"},
        yml="platforms:\n  - os: Windows\n    browserVersion: '99'\n    browserName: edge\n",
    )
    assert s.environment == {
        "os": "Linux",
        "browser_version": "120",
        "device": "Pixel",
        "browser": "edge",
    }


@pytest.mark.parametrize(
    "yml,expected",
    [
        ("testReporting: false\n", False),
        ("testObservability: false\n", False),
        ("testReporting: true\n", True),
        ("testReporting: true\ntestObservability: false\n", False),
        ("testReporting: false\ntestObservability: true\n", False),
        ("testReporting: 'off'\n", False),
        ("testObservability: true\n", True),
    ],
)
def test_test_reporting_switch(tmp_path, yml, expected):
    s = load(tmp_path, yml=yml)
    assert s.enabled is expected and s.problems == ()


def test_env_switch_beats_yml_switch(tmp_path):
    s = load(tmp_path, environ={"BROWSERSTACK_TEST_REPORTING": "on"}, yml="testReporting: false\n")
    assert s.enabled is True
    s = load(tmp_path, environ={"BROWSERSTACK_TEST_OBSERVABILITY": "false"})
    assert s.enabled is False


def test_product_options_override_top_level(tmp_path):
    yml = """\
projectName: top-p
buildName: top-b
buildTag: top-t
testObservabilityOptions:
  projectName: obs-p
  buildName: obs-b
  buildTag: [obs-t]
testReportingOptions:
  projectName: tra-p
"""
    s = load(tmp_path, yml=yml)
    assert s.project_name == "tra-p"  # testReporting* wins
    assert s.build_name == "obs-b"  # testObservability* beats top level
    assert s.build_tags == ("obs-t",)
    assert "testReportingOptions.projectName" in s.sources["project_name"]


def test_yml_string_build_tag_and_userdata_comma_tags(tmp_path):
    assert load(tmp_path, yml="buildTag: solo\n").build_tags == ("solo",)
    s = load(tmp_path, userdata={"bstack.build_tags": "a, b,,c"}, yml="buildTag: solo\n")
    assert s.build_tags == ("a", "b", "c")
    s = load(tmp_path, environ={"BSTACK_BUILD_TAGS": "e1,e2"}, yml="buildTag: solo\n")
    assert s.build_tags == ("e1", "e2")


def test_custom_tags_in_number_order(tmp_path):
    s = load(
        tmp_path,
        userdata={"bstack.build_tags": "base"},
        environ={"CUSTOM_TAG_10": "ten", "CUSTOM_TAG_2": "two-env", "CUSTOM_TAG_3": "base"},
        yml="CUSTOM_TAG_1: one\nCUSTOM_TAG_2: two-yml\nCUSTOM_TAG_11: eleven\n",
    )
    # env beats yml for the same number; duplicates are dropped, first one kept
    assert s.build_tags == ("base", "one", "two-env", "ten", "eleven")
    assert "env CUSTOM_TAG_10" in s.sources["build_tags"]


def test_yml_env_var_references(tmp_path):
    yml = "userName: ${BS_USER}\nbuildName: 'b-${BRANCH}-x'\nbuildTag: ['${BRANCH}', plain]\n"
    s = load(tmp_path, environ={"BS_USER": "ann", "BRANCH": "main"}, yml=yml)
    assert (s.username, s.build_name, s.build_tags) == ("ann", "b-main-x", ("main", "plain"))
    s = load(tmp_path, environ={"BS_USER": "ann"}, yml=yml)
    assert s.build_name == "b--x"
    assert "buildName" in problems_text(s) and "${BRANCH}" in problems_text(s)


def test_yaml_extension_and_both_present(tmp_path):
    s = load(tmp_path, yml="buildName: from-yaml\n", name="browserstack.yaml")
    assert s.build_name == "from-yaml" and s.config_file.endswith("browserstack.yaml")
    s = load(tmp_path, yml="buildName: from-yml\n")
    assert s.build_name == "from-yml" and "both" in problems_text(s)


def test_config_file_env_and_userdata(tmp_path):
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "bs.yml").write_text("buildName: ci-file\n", encoding="utf-8")
    (tmp_path / "other.yml").write_text("buildName: other-file\n", encoding="utf-8")
    load(tmp_path, yml="buildName: cwd-file\n")
    s = load(tmp_path, environ={"BROWSERSTACK_CONFIG_FILE": "ci/bs.yml"})
    assert s.build_name == "ci-file" and s.config_file == str(tmp_path / "ci" / "bs.yml")
    assert s.sources["build_name"] == "ci/bs.yml: buildName"
    s = load(
        tmp_path,
        userdata={"bstack.config_file": str(tmp_path / "other.yml")},
        environ={"BROWSERSTACK_CONFIG_FILE": "ci/bs.yml"},
    )
    assert s.build_name == "other-file"


# --------------------------------------------------------------------------- build identifier


def test_build_number_and_date_time(tmp_path):
    s = load(tmp_path, environ={"BUILD_NUMBER": "12"}, yml="buildIdentifier: '${BUILD_NUMBER}'\n")
    assert s.build_identifier == "12" and s.build_name == f"{tmp_path.name} 12"
    assert "from env BUILD_NUMBER" in s.sources["build_identifier"]
    s = load(tmp_path, yml="buildName: nightly\nbuildIdentifier: '${DATE_TIME}'\n")
    assert s.build_identifier == "2026-11-28-20-45" and s.build_name == "nightly 2026-11-28-20-45"
    assert s.problems == ()


def test_build_number_falls_back_to_ci_counters_then_date_time(tmp_path):
    yml = "buildIdentifier: '#${BUILD_NUMBER}'\n"
    s = load(tmp_path, environ={"GITHUB_RUN_NUMBER": "5"}, yml=yml)
    assert s.build_identifier == "#5"
    s = load(tmp_path, environ={"GITHUB_RUN_NUMBER": "5", "BUILD_NUMBER": "9"}, yml=yml)
    assert s.build_identifier == "#9"
    s = load(tmp_path, yml=yml)
    assert s.build_identifier == "#2026-11-28-20-45" and s.problems == ()
    assert "DATE_TIME" in s.sources["build_identifier"]


def test_identifier_from_env_and_userdata_is_expanded(tmp_path):
    env = {"BROWSERSTACK_BUILD_IDENTIFIER": "${DATE_TIME}", "BROWSERSTACK_BUILD_NAME": "b"}
    s = load(tmp_path, environ=env)
    assert s.build_name == "b 2026-11-28-20-45"
    s = load(
        tmp_path,
        userdata={"bstack.build_identifier": "r${BUILD_NUMBER}"},
        environ=env | {"BUILD_NUMBER": "3"},
    )
    assert s.build_name == "b r3" and s.build_identifier == "r3"


# --------------------------------------------------------------------------- bad configuration


def test_unknown_userdata_key_suggests_closest(tmp_path):
    s = load(tmp_path, userdata={"bstack.buildname": "x", "myapp.url": "kept for the user"})
    (line,) = s.problems
    assert line.startswith("unknown setting bstack.buildname")
    assert "did you mean bstack.build_name?" in line
    assert "known: " in line and "bstack.flush_timeout" in line
    s = load(tmp_path, userdata={"bstack.zzzzzzzz": "x"})
    assert "did you mean" not in problems_text(s) and "known: bstack.enabled" in problems_text(s)


def test_every_documented_key_is_known(tmp_path):
    for key in USERDATA_KEYS:
        assert "unknown" not in problems_text(load(tmp_path, userdata={key: ""}))


@pytest.mark.parametrize(
    "key,value,message,read,fallback",
    [
        ("flush_timeout", "abc", "is not a number (using 30)", lambda s: s.flush_timeout, 30.0),
        ("flush_timeout", "-1", "zero or more (using 30)", lambda s: s.flush_timeout, 30.0),
        ("flush_timeout", "nan", "zero or more (using 30)", lambda s: s.flush_timeout, 30.0),
        ("request_timeout", "0", "more than zero (using 15)", lambda s: s.request_timeout, 15.0),
        ("concurrency", "lots", "is not a whole number (using 32)", lambda s: s.concurrency, 32),
        ("concurrency", "0", "is outside 1..64 (using 1)", lambda s: s.concurrency, 1),
        ("concurrency", "500", "is outside 1..64 (using 64)", lambda s: s.concurrency, 64),
        ("logs", "maybe", "is not a yes/no value", lambda s: s.logs, True),
        ("enabled", "sure", "is not a yes/no value", lambda s: s.enabled, True),
        ("step_hooks", "some", "is not one of failed, all, off", lambda s: s.step_hooks, "failed"),
        ("build_hashed_id", "../x", "is not a build id", lambda s: s.build_hashed_id, None),
    ],
)
def test_malformed_userdata_values(tmp_path, key, value, message, read, fallback):
    s = load(tmp_path, userdata={f"bstack.{key}": value})
    assert read(s) == fallback
    (line,) = s.problems
    assert line.startswith(f"userdata bstack.{key}={value!r} ")
    assert message in line


def test_malformed_value_falls_back_to_the_next_source(tmp_path):
    s = load(
        tmp_path, userdata={"bstack.flush_timeout": "x"}, environ={"BSTACK_FLUSH_TIMEOUT": "7"}
    )
    assert s.flush_timeout == 7.0
    assert s.problems == (
        "userdata bstack.flush_timeout='x' is not a number (using 7 from env BSTACK_FLUSH_TIMEOUT)",
    )
    s = load(tmp_path, environ={"BSTACK_STEP_HOOKS": "never"})
    assert s.step_hooks == "failed" and "env BSTACK_STEP_HOOKS='never'" in problems_text(s)


def test_long_build_run_identifier_is_cut(tmp_path):
    s = load(tmp_path, environ={"BROWSERSTACK_BUILD_RUN_IDENTIFIER": "r" * 70})
    assert s.build_run_identifier == "r" * 64
    assert "longer than 64" in problems_text(s)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("buildName: [unclosed\n", "invalid YAML"),
        ("a: b\n  c: d\n", "invalid YAML"),
        ("- just\n- a list\n", "top level is a list"),
        ("just a string\n", "top level is a string"),
    ],
)
def test_invalid_yml_is_ignored_with_a_problem(tmp_path, text, expected):
    s = load(tmp_path, environ={"BROWSERSTACK_BUILD_NAME": "env-b"}, yml=text)
    assert s.build_name == "env-b" and s.config_file is None
    (line,) = s.problems
    # "<path>: <key>: <problem>", the path relative to the working directory.
    assert line.startswith("browserstack.yml: could not be read: ")
    assert expected in line and line.endswith("(ignored)")


def test_unreadable_yml(tmp_path):
    (tmp_path / "browserstack.yml").write_bytes(b"buildName: \xff\xfe\n")
    s = load(tmp_path)
    assert "could not be read: not UTF-8 text (ignored)" in problems_text(s)
    (tmp_path / "dir.yml").mkdir()
    s = load(tmp_path, environ={"BROWSERSTACK_CONFIG_FILE": "dir.yml"})
    assert "dir.yml" in problems_text(s) and "could not be read" in problems_text(s)


def test_empty_yml_is_fine(tmp_path):
    s = load(tmp_path, yml="# only a comment\n")
    assert s.problems == () and s.config_file is not None


def test_config_file_pointing_nowhere(tmp_path):
    load(tmp_path, yml="buildName: cwd-file\n")
    s = load(tmp_path, environ={"BROWSERSTACK_CONFIG_FILE": "missing.yml"})
    (line,) = s.problems
    assert "env BROWSERSTACK_CONFIG_FILE='missing.yml' points to a missing file" in line
    assert str(tmp_path / "missing.yml") in line
    # an explicit path that is wrong never silently falls back to another file
    assert s.build_name == tmp_path.name and s.config_file is None


def test_wrongly_typed_yml_values(tmp_path):
    yml = """\
buildName: [a, b]
projectName: yes
testReportingOptions: nope
platforms: {browserName: chrome}
buildTag: [{x: 1}]
testReporting: sometimes
"""
    s = load(tmp_path, yml=yml)
    text = problems_text(s)
    assert "browserstack.yml: buildName: ['a', 'b'] is a list, not text" in text
    assert "browserstack.yml: projectName: True is a yes/no value, not text" in text
    assert "browserstack.yml: testReportingOptions: not a mapping" in text
    assert "browserstack.yml: platforms: not a list of mappings" in text
    assert "browserstack.yml: buildTag: " in text and "browserstack.yml: testReporting: " in text
    assert s.build_name == s.project_name == tmp_path.name and s.enabled is True
    assert len(s.problems) == 6


@pytest.mark.parametrize(
    "url,ok",
    [
        ("https://api-automation.browserstack.com/", True),
        ("https://eu.example.com:8443/base", True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:1234/", True),
        ("http://[::1]:9", True),
        ("http://127.9.9.9", True),
        ("http://example.com", False),
        ("http://10.0.0.1:8080", False),
        ("ftp://example.com", False),
        ("example.com", False),
        ("https://", False),
        ("https://host:notaport", False),
        ("https://user:pw@example.com", False),
    ],
)
def test_api_url_checks(tmp_path, url, ok):
    s = load(tmp_path, environ={"BROWSERSTACK_API_URL": url})
    assert s.api_url_ok is ok
    assert s.enabled is True  # the journal is still written; only sending is refused
    assert not s.api_url.endswith("/")
    if ok:
        assert s.problems == ()
    else:
        (line,) = s.problems
        assert line.startswith("env BROWSERSTACK_API_URL=")
        assert "pw" not in line
    if url.startswith("http://example.com"):
        assert "plain http://" in problems_text(s)


def test_credentials_half_set(tmp_path):
    s = load(tmp_path, environ={"BROWSERSTACK_USERNAME": "bob"})
    (line,) = s.problems
    assert "username is set (env BROWSERSTACK_USERNAME)" in line and "access key is missing" in line
    assert not s.has_credentials
    s = load(tmp_path, yml=f"accessKey: {SECRET}\n")
    (line,) = s.problems
    assert (
        "access key is set (browserstack.yml: accessKey" in line and "username is missing" in line
    )
    assert SECRET not in line


def test_credentials_from_different_sources_are_fine(tmp_path):
    s = load(tmp_path, userdata={"bstack.username": "u"}, yml=f"accessKey: {SECRET}\n")
    assert s.has_credentials and s.problems == ()


def test_internal_error_gives_defaults_and_a_problem(tmp_path, monkeypatch):
    def boom(self):
        raise RuntimeError(SECRET)

    monkeypatch.setattr(config.Resolver, "settings", boom)
    s = load(tmp_path)
    assert s.enabled is True and s.project_name == tmp_path.name
    (line,) = s.problems
    assert "internal error" in line and "RuntimeError" in line and SECRET not in line


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    userdata=st.dictionaries(
        st.sampled_from(USERDATA_KEYS + ("bstack.x", "other")), st.text(max_size=30), max_size=8
    ),
    environ=st.dictionaries(
        st.sampled_from(
            [
                "BSTACK_CONCURRENCY",
                "BSTACK_FLUSH_TIMEOUT",
                "BROWSERSTACK_API_URL",
                "CUSTOM_TAG_1",
                "BROWSERSTACK_BUILD_IDENTIFIER",
                "HTTP_PROXY",
            ]
        ),
        st.text(max_size=30),
        max_size=6,
    ),
)
def test_never_raises(tmp_path, userdata, environ):
    s = load_settings(userdata, environ, str(tmp_path), now=NOW)
    assert all(not p.startswith(("bstack", "behave-bstack")) for p in s.problems)
    assert 1 <= s.concurrency <= 64 and s.flush_timeout >= 0 and s.request_timeout > 0
    assert s.step_hooks in ("failed", "all", "off")


# --------------------------------------------------------------------------- redaction


def everything_shown(s: Settings) -> str:
    return "\n".join([repr(s), str(s), problems_text(s), repr(s.describe()), repr(dict(s.sources))])


@pytest.mark.parametrize("where", ["userdata", "env", "yml"])
def test_access_key_never_shown(tmp_path, where):
    s = load(
        tmp_path,
        userdata={"bstack.access_key": SECRET} if where == "userdata" else None,
        environ={"BROWSERSTACK_ACCESS_KEY": SECRET} if where == "env" else None,
        yml=f"accessKey: {SECRET}\n" if where == "yml" else None,
    )
    assert s.access_key == SECRET
    assert SECRET not in everything_shown(s)
    assert SECRET[-4:] not in everything_shown(s)  # not even a "****abcd" tail
    row = next(r for r in s.describe() if r[0] == "access_key")
    assert row[1] == f"set ({len(SECRET)} chars)"
    assert s.problems  # username missing: the problem line still hides the key


def test_access_key_hidden_when_yml_is_broken_on_its_line(tmp_path):
    s = load(tmp_path, yml=f"userName: u\naccessKey: {SECRET}: oops\n")
    assert s.problems and SECRET not in everything_shown(s)


def test_access_key_hidden_when_echoed_into_another_setting(tmp_path):
    yml = "userName: u\naccessKey: ${KEY}\nbuildName: 'leak-${KEY}'\nbuildTag: ['${KEY}']\n"
    s = load(
        tmp_path, userdata={"bstack.flush_timeout": f"{SECRET}"}, environ={"KEY": SECRET}, yml=yml
    )
    assert s.access_key == SECRET
    assert SECRET not in everything_shown(s) and "flush_timeout" in problems_text(s)
    assert s.build_name == f"leak-{SECRET}"  # the value itself is kept; only display hides it


def test_key_in_wrong_userdata_name_is_not_echoed(tmp_path):
    s = load(tmp_path, userdata={"bstack.accesskey": SECRET})
    assert "did you mean bstack.access_key?" in problems_text(s)
    assert SECRET not in everything_shown(s)


def test_proxy_passwords_are_redacted(tmp_path):
    s = load(tmp_path, environ={"HTTPS_PROXY": "http://me:hunter2@proxy:3128"})
    assert s.https_proxy == "http://me:hunter2@proxy:3128"  # the real value is kept for use
    assert "hunter2" not in repr(s) and "hunter2" not in repr(s.describe())
    row = next(r for r in s.describe() if r[0] == "https_proxy")
    assert row[1] == "http://****@proxy:3128"


def test_describe_covers_every_setting(tmp_path):
    s = load(tmp_path, environ={"BUILD_NUMBER": "1"}, yml=FULL_YML)
    names = [row[0] for row in s.describe()]
    expected = {f.name for f in dataclasses.fields(Settings)} - {
        "environment",
        "sources",
        "problems",
        "api_url_ok",
    }
    assert expected | {f"environment.{k}" for k in config.ENVIRONMENT_KEYS} == set(names)
    assert list(s.sources) == names  # every setting has a source, in the same order
    assert dict((n, v) for n, v, _ in s.describe())["build_tags"] == "smoke, nightly, custom-one"
    refused = load(tmp_path, environ={"BROWSERSTACK_API_URL": "http://example.com"})
    assert "not allowed" in dict((n, v) for n, v, _ in refused.describe())["api_url"]
