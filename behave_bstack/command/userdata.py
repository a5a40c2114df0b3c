"""The settings the command starts from, as a behave run would: the bstack.* userdata of
behave's config files, and -D NAME=VALUE.

Runs in the command's process.
"""

from __future__ import annotations

import configparser
import os

from .common import CliError

BEHAVE_CONFIG_FILES = ("pyproject.toml", "tox.ini", "setup.cfg", ".behaverc", "behave.ini")


def behave_userdata(cwd: str, home: str | None = None) -> dict:
    """The bstack.* userdata behave itself would see in its config files (behave 1.3's
    rules: home directory first, then the working directory, files in the order above,
    and each file that exists replaces the whole table), so that this command resolves the
    same settings as `behave -f bstack` run in the same directory."""
    data: dict = {}
    for folder in (home or os.path.expanduser("~"), cwd):
        for name in BEHAVE_CONFIG_FILES:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                table = _read_userdata(path)
                if table is not None:
                    data = table
    return {key: value for key, value in data.items() if str(key).startswith("bstack.")}


def _read_userdata(path: str) -> dict | None:
    if path.endswith(".toml"):
        try:
            import tomllib
        except ImportError:  # Python 3.10: behave ignores pyproject.toml too
            return None
        try:
            with open(path, "rb") as handle:
                tool = tomllib.load(handle).get("tool")
        except (OSError, ValueError):
            return None
        if not isinstance(tool, dict):
            return None
        table = (tool.get("behave") or {}).get("userdata") or {}
        return {
            key: str(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            # behave keeps TOML booleans as they are; load_settings accepts them
            else value
            for key, value in table.items()
        }
    parser = configparser.ConfigParser()
    parser.optionxform = str  # keys are case-sensitive, as in behave
    try:
        parser.read(path, encoding="utf-8")
        if not parser.has_section("behave.userdata"):
            return {}
        return dict(parser.items("behave.userdata"))
    except (configparser.Error, UnicodeDecodeError, OSError):
        return None


def parse_defines(items: list[str]) -> dict[str, str]:
    """-D name=value, as behave's -D (a bare name means "true")."""
    defines = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not name.strip():
            raise CliError(f"-D {item!r}: expected NAME=VALUE")
        defines[name.strip()] = value if sep else "true"
    return defines
