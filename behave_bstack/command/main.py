"""The `behave-bstack` command (also `python -m behave_bstack`).

    upload   send what journals still hold        status  one line per journal
    show     a run from its journal, as a tree    doctor  configuration and connectivity
    build    start/finish a build shared by runs  serve   the local TRA emulator
    clean    remove fully delivered journals

Every message goes through Console, which hides the access key wherever it might show up
(even in --debug tracebacks).  Errors are one line on stderr; see EXIT_CODES.
"""

from __future__ import annotations

import argparse
import base64
import configparser
import json
import logging
import os
import shlex
import signal
import socket
import ssl
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import unquote, urlsplit

from .. import __version__
from ..delivery.routes import ROUTES, build_url, path_for
from ..delivery.transport import Response, Transport, TransportError
from ..journal import store as journal
from ..origin import host
from ..settings.config import Settings, load_settings
from . import journal_view

PROG = "behave-bstack"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CREDENTIALS = 0, 1, 2, 3
EXIT_CODES = """exit codes:
  0  ok
  1  something failed or is still pending
  2  usage or configuration error
  3  BrowserStack refused the credentials"""
NO_CREDENTIALS = (
    "no BrowserStack credentials: set BROWSERSTACK_USERNAME and BROWSERSTACK_ACCESS_KEY "
    "(or userName/accessKey in browserstack.yml, or -D bstack.username=... "
    "-D bstack.access_key=...)"
)
CREDENTIALS_REFUSED = "refused the credentials"  # delivery.py's words for a 401/403 stop
CA_BUNDLE_HINT = (
    "if a proxy or firewall re-signs TLS, give its CA certificate with BROWSERSTACK_CA_BUNDLE, "
    "proxyCaCertificate in browserstack.yml or -D bstack.ca_bundle"
)
HASHED_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
DOCTOR_BUILD = "behave-bstack doctor"


class CliError(Exception):
    """Ends the command with one line on stderr and an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE, prog: str = PROG) -> None:
        super().__init__(message)
        self.code = code
        self.prog = prog


class Console:
    """stdout/stderr that never show a secret it was told about."""

    def __init__(self, stdout: TextIO, stderr: TextIO) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.secrets: set[str] = set()

    def hide(self, secret: str | None) -> None:
        if secret and len(secret) >= 4:  # shorter ones would mangle ordinary text
            self.secrets.add(secret)

    def scrub(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "****")
        return text

    def out(self, line: str = "") -> None:
        self.stdout.write(self.scrub(line) + "\n")
        self.stdout.flush()

    def err(self, line: str) -> None:
        self.stderr.write(self.scrub(line) + "\n")
        self.stderr.flush()


class _LogHandler(logging.Handler):
    """--debug: the package's log lines on stderr, scrubbed."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.DEBUG)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.err(f"{PROG}: debug: {record.getMessage()}")
        except Exception:  # noqa: BLE001 - logging must never end the command
            pass


@dataclass
class Context:
    args: argparse.Namespace
    console: Console
    settings: Settings
    cwd: str
    environ: Mapping[str, str]

    @property
    def out(self) -> Callable[[str], None]:
        return self.console.out

    @property
    def err(self) -> Callable[[str], None]:
        return self.console.err

    def journal_dir(self) -> Path:
        chosen = getattr(self.args, "journal_dir", None) or self.settings.journal_dir
        return Path(self.cwd, os.path.expanduser(chosen))

    def warn_problems(self) -> None:
        for problem in self.settings.problems:
            self.err(f"{PROG}: {problem}")


# --------------------------------------------------------------------------- settings

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


def transport_options(settings: Settings) -> dict:
    """What uploader.make_transport() and deliver_journal() take."""
    return {
        "api_url": settings.api_url,
        "username": settings.username,
        "access_key": settings.access_key,
        "request_timeout": settings.request_timeout,
        "concurrency": settings.concurrency,
        "ca_bundle": settings.ca_bundle,
        "https_proxy": settings.https_proxy,
        "http_proxy": settings.http_proxy,
        "no_proxy": settings.no_proxy,
    }


def need_sending_settings(ctx: Context) -> None:
    """Commands that talk to TRA: a usable URL and both credentials, or exit 2."""
    settings = ctx.settings
    if not settings.api_url_ok:
        why = next((p for p in settings.problems if "api_url" in p or "API" in p), None)
        raise CliError(
            why or f"the API URL {settings.api_url!r} is not allowed (see the problems above)",
            EXIT_USAGE,
        )
    if not settings.has_credentials:
        raise CliError(NO_CREDENTIALS, EXIT_USAGE)


def make_client(settings: Settings) -> Transport:
    from ..delivery.uploader import make_transport

    try:
        return make_transport(transport_options(settings))
    except (ValueError, OSError, ssl.SSLError) as exc:
        raise CliError(f"cannot set up the connection: {exc}", EXIT_USAGE) from None


def send(client: Transport, op: str, body: dict, build: str | None = None, target=None) -> dict:
    """One API call outside a journal (build start/finish, doctor --live).  The body is a
    draft like a journal's, so it goes through finalize() exactly like delivered ones."""
    from ..delivery.finalize import finalize

    try:
        response = client.request(ROUTES[op][0], path_for(op, build, target), finalize(op, body))
    except TransportError as exc:
        raise CliError(f"{op}: {exc}", EXIT_FAILED) from None
    return check_response(op, response)


def check_response(op: str, response: Response) -> dict:
    if response.status in (401, 403):
        raise CliError(
            f"BrowserStack {CREDENTIALS_REFUSED} ({response.status} {response.message()}); "
            "check BROWSERSTACK_USERNAME and BROWSERSTACK_ACCESS_KEY",
            EXIT_CREDENTIALS,
        )
    if not 200 <= response.status < 300:
        raise CliError(f"{op}: HTTP {response.status}: {response.message()}", EXIT_FAILED)
    data = response.json() or {}
    id_field = ROUTES[op][2]
    if id_field and not isinstance(data.get(id_field), str):
        raise CliError(f"{op}: the answer has no {id_field}", EXIT_FAILED)
    return data


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --------------------------------------------------------------------------- journals


def resolve_run(spec: str, journal_dir: Path, cwd: str) -> Path:
    """A journal named by path, by run id (under the journal dir), or "latest"."""
    if spec == "latest":
        found = journal_view.latest_run(journal_dir)
        if found is None:
            raise CliError(f"no journals in {journal_dir}")
        return found
    for candidate in (Path(cwd, os.path.expanduser(spec)), journal_dir / spec):
        if (candidate / journal.EVENTS).is_file():
            return candidate
    raise CliError(
        f"no journal at {spec} (looked for {journal.EVENTS} there and in {journal_dir}); "
        f"`{PROG} status` lists them"
    )


def cmd_status(ctx: Context) -> int:
    journal_dir = ctx.journal_dir()
    states = [journal_view.read_state(d) for d in journal.run_directories(journal_dir)]
    if ctx.args.json:
        ctx.out(json.dumps([journal_view.status_record(s) for s in states], indent=1))
    elif not states:
        ctx.out(f"no journals in {journal_dir}")
    else:
        for state in states:
            ctx.out(journal_view.status_line(state))
    return EXIT_FAILED if any(s.needs_upload or s.failed for s in states) else EXIT_OK


def cmd_show(ctx: Context) -> int:
    run_dir = resolve_run(ctx.args.run, ctx.journal_dir(), ctx.cwd)
    for line in journal_view.render_view(journal_view.load_view(run_dir), ctx.args.logs):
        ctx.out(line)
    return EXIT_OK


def cmd_clean(ctx: Context) -> int:
    """Remove fully delivered journals (with --all: every journal not in use)."""
    from ..journal.housekeeping import remove

    journal_dir = ctx.journal_dir()
    states = [journal_view.read_state(d) for d in journal.run_directories(journal_dir)]
    chosen, kept = [], []
    for state in states:
        if state.state == "running":
            kept.append((state, "its behave run is still going"))
        elif ctx.args.all or state.fully_delivered:
            chosen.append(state)
        else:
            why = f"{state.pending_total} pending" if state.pending_total else ""
            if state.failed:
                why += (", " if why else "") + f"{state.failed} refused"
            kept.append((state, why or "not fully delivered"))
    verb = "would remove" if ctx.args.dry_run else "removed"
    removed = 0
    for state in chosen:
        what = "fully delivered" if state.fully_delivered else f"{state.pending_total} pending"
        if ctx.args.dry_run or remove(state.run_dir):
            removed += 1
            ctx.out(f"{verb} {state.run_dir} ({what})")
        else:
            kept.append((state, "another process is delivering it"))
    for state, why in kept:
        ctx.out(f"kept {state.run_dir} ({why})")
    ctx.out(
        f"{verb} {journal_view.plural(removed, 'journal')}, kept {len(kept)}"
        + ("" if ctx.args.all or not kept else " (`--all` removes those not in use too)")
    )
    return EXIT_OK


def cmd_upload(ctx: Context) -> int:
    from ..delivery.uploader import deliver_journal

    need_sending_settings(ctx)
    ctx.warn_problems()
    journal_dir = ctx.journal_dir()
    if ctx.args.runs:
        run_dirs = [resolve_run(spec, journal_dir, ctx.cwd) for spec in ctx.args.runs]
    else:
        run_dirs = list(journal.run_directories(journal_dir))
    todo = []
    for run_dir in dict.fromkeys(run_dirs):
        state = journal_view.read_state(run_dir)
        if state.needs_upload:
            todo.append(state)
        elif ctx.args.runs:
            ctx.out(
                f"{state.run_id}: nothing to send "
                f"({journal_view.plural(state.acknowledged, 'call')} acknowledged)"
            )
    if not todo:
        if not ctx.args.runs:
            ctx.out(f"nothing to upload: no journal in {journal_dir} holds unsent calls")
        return EXIT_OK

    options = transport_options(ctx.settings)
    deadline = time.monotonic() + ctx.args.timeout
    totals = {"journals": 0, "incomplete": 0, "sent": 0, "refused": 0, "pending": 0, "skipped": 0}
    stop: tuple[str, int] | None = None
    for state in todo:
        left = deadline - time.monotonic()
        if stop or left <= 0:
            why = stop[0] if stop else f"the {ctx.args.timeout:g} s timeout passed"
            ctx.out(
                f"{state.run_id}: not tried ({why}); "
                f"{journal_view.plural(state.pending_total, 'call')} pending"
            )
            totals["skipped"] += 1
            totals["pending"] += state.pending_total
            continue
        if state.writer_alive:
            ctx.out(f"{state.run_id}: skipped: the behave run writing it is still going")
            totals["skipped"] += 1
            continue
        lock = journal.try_lock(state.run_dir)
        if lock is None:
            ctx.out(f"{state.run_id}: skipped: another process is delivering it right now")
            totals["skipped"] += 1
            continue
        try:
            report = deliver_journal(state.run_dir, options, timeout=left)
        finally:
            lock.close()
        after = journal_view.read_state(state.run_dir)
        sent = after.acknowledged - state.acknowledged
        refused = sum((report.get("failed") or {}).values())
        if after.pending or after.needs_upload:
            totals["incomplete"] += 1  # tried, not all of it delivered: not "uploaded"
        else:
            totals["journals"] += 1
        totals["sent"] += sent
        totals["refused"] += refused
        totals["pending"] += after.pending_total
        ctx.out(upload_line(after, report, sent, refused))
        for reason in (report.get("reasons") or [])[:3]:
            ctx.out(f"    refused: {journal_view.first_line(reason)}")
        stopped = report.get("stopped")
        if stopped and not after.writer_alive:  # a run that started meanwhile stops only itself
            code = EXIT_CREDENTIALS if report.get("stop_kind") == "credentials" else EXIT_FAILED
            stop = (f"delivery stopped: {journal_view.first_line(stopped)}", code)
    ctx.out(
        f"total: {journal_view.plural(totals['journals'], 'journal')} uploaded, "
        + (f"{totals['incomplete']} incomplete, " if totals["incomplete"] else "")
        + f"{journal_view.plural(totals['sent'], 'call')} delivered, {totals['refused']} refused, "
        f"{totals['pending']} pending"
        + (
            f", {journal_view.plural(totals['skipped'], 'journal')} skipped"
            if totals["skipped"]
            else ""
        )
    )
    if stop:
        ctx.err(f"{PROG}: {stop[0]} (everything unsent stays in the journal)")
        return stop[1]
    failed = totals["refused"] or totals["pending"] or totals["skipped"]
    return EXIT_FAILED if failed else EXIT_OK


def upload_line(state: journal_view.JournalState, report: dict, sent: int, refused: int) -> str:
    delivered = report.get("delivered") or {}
    line = (
        f"{state.run_id}: {journal_view.plural(sent, 'call')} delivered, {refused} refused, "
        f"{state.pending_total} pending (tests {delivered.get('test_finish', 0)}/{state.tests}, "
        f"hook runs {delivered.get('hook_finish', 0)}/{state.hooks}, "
        f"{journal_view.plural(report.get('log_entries', 0), 'log entry', 'log entries')})"
    )
    if report.get("stopped"):
        line += f"; stopped: {journal_view.first_line(report['stopped'])}"
    url = report.get("build_url") or state.build_url
    return line + (f"; build {url}" if url else "")


# --------------------------------------------------------------------------- build


def cmd_build_start(ctx: Context) -> int:
    from ..origin import ci, host, vcs

    need_sending_settings(ctx)
    ctx.warn_problems()
    settings, args = ctx.settings, ctx.args
    body: dict = {
        "name": args.name or settings.build_name,
        "project_name": args.project or settings.project_name,
        "started_at": now_ms(),
        "framework": {"name": "behave", "version": host.behave_version()},
        "host_info": host.host_info(),
    }
    if settings.build_tags:
        body["tags"] = list(settings.build_tags)
    run_identifier = (
        args.run_identifier or settings.build_run_identifier or ci.ci_run_identifier(ctx.environ)
    )
    if run_identifier:
        body["build_run_identifier"] = run_identifier
    ci_info = ci.detect_ci(ctx.environ)
    if ci_info:
        body["ci_info"] = ci_info
    root = vcs.repo_root(ctx.cwd)
    git = vcs.git_info(root, environ=ctx.environ) if root else None
    if git:
        body["version_control"] = git
    client = make_client(settings)
    try:
        build_id = send(client, "build_start", body)["build_hashed_id"]
    finally:
        client.close()
    url = build_url(build_id, settings.api_url)
    if args.json:
        ctx.out(json.dumps({"build_hashed_id": build_id, "build_url": url}))
    else:
        ctx.out(f"export BROWSERSTACK_BUILD_HASHED_ID={shlex.quote(build_id)}")
        ctx.err(f"{PROG}: started build {url}; behave runs with this variable report into it")
        ctx.err(f"{PROG}: finish it with: {PROG} build finish")
    return EXIT_OK


def cmd_build_finish(ctx: Context) -> int:
    need_sending_settings(ctx)
    build_id = ctx.args.build_id or ctx.settings.build_hashed_id
    if not build_id:
        raise CliError("which build? give its id or set BROWSERSTACK_BUILD_HASHED_ID")
    if not set(build_id) <= HASHED_ID_CHARS or len(build_id) > 128:
        raise CliError(f"{build_id!r} is not a build id (letters, digits, '-' and '_' only)")
    client = make_client(ctx.settings)
    try:
        send(client, "build_finish", {"finished_at": now_ms()}, build=build_id)
    finally:
        client.close()
    url = build_url(build_id, ctx.settings.api_url)
    if ctx.args.json:
        ctx.out(json.dumps({"build_hashed_id": build_id, "build_url": url, "finished": True}))
    else:
        ctx.out(f"finished build {build_id}: {url}")
    return EXIT_OK


# --------------------------------------------------------------------------- doctor


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not applicable or not run
    detail: str


def _resolve(host: str, port: int, timeout: float) -> list[tuple]:
    """getaddrinfo with a deadline (it has none of its own)."""
    result: list = []
    error: list[BaseException] = []

    def work() -> None:
        try:
            result.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            error.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} s")
    if error:
        raise error[0]
    return result


def _connect(addresses: list[tuple], timeout: float) -> socket.socket:
    last: OSError | None = None
    for family, kind, proto, _, address in addresses[:4]:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError("no address to connect to")


def _tunnel(sock: socket.socket, host: str, port: int, proxy) -> int:
    """CONNECT through an HTTP proxy; returns the proxy's status code."""
    lines = [f"CONNECT {host}:{port} HTTP/1.1", f"Host: {host}:{port}"]
    if proxy.username:
        pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(pair.encode()).decode())
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    status_line = data.split(b"\r\n", 1)[0].decode("latin-1", "replace").split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise OSError("the proxy did not answer CONNECT with HTTP")
    return int(status_line[1])


def network_checks(settings: Settings) -> list[Check]:
    """DNS, TCP, proxy tunnel and TLS handshake towards the API host, the way delivery
    connects (same proxy choice), each failure naming the setting to change."""
    url = urlsplit(settings.api_url)
    host, https = url.hostname or "", url.scheme == "https"
    port = url.port or (443 if https else 80)
    timeout = min(settings.request_timeout, 15.0)
    try:
        proxy = Transport(
            settings.api_url,
            "",
            "",
            https_proxy=settings.https_proxy,
            http_proxy=settings.http_proxy,
            no_proxy=settings.no_proxy,
        ).proxy
    except ValueError as exc:
        return [Check("URL", False, f"{exc}; change api_url (BROWSERSTACK_API_URL)")]
    sources = settings.sources
    proxy_setting = "https_proxy" if https else "http_proxy"
    proxy_src = sources.get(proxy_setting, "the environment")
    if proxy_src == "default":
        proxy_src = "the environment"
    api_source = sources.get("api_url", "default")
    api_hint = "api_url" + ("" if api_source == "default" else f" (from {api_source})")
    checks: list[Check] = []
    if proxy is not None:
        target, target_port = proxy.hostname or "", proxy.port or 80
        change = f"check {proxy_setting} (from {proxy_src}), or no_proxy to bypass it"
        detail = f"{target}:{target_port} from {proxy_src} (it resolves {host} itself)"
        checks.append(Check("proxy", None, detail))
    else:
        target, target_port = host, port
        change = (
            f"check the network, a firewall, or {api_hint}; set https_proxy if a proxy is required"
        )

    try:
        addresses = _resolve(target, target_port, timeout)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        checks.append(Check("DNS", False, f"cannot resolve {target} ({reason}); {change}"))
        return checks
    shown = ", ".join(dict.fromkeys(str(a[4][0]) for a in addresses[:3]))
    checks.append(Check("DNS", True, f"{target} -> {shown}"))

    started = time.monotonic()
    try:
        sock = _connect(addresses, timeout)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        checks.append(
            Check("TCP", False, f"cannot connect to {target}:{target_port} ({reason}); {change}")
        )
        return checks
    elapsed = (time.monotonic() - started) * 1000
    checks.append(Check("TCP", True, f"connected to {target}:{target_port} in {elapsed:.0f} ms"))
    try:
        if proxy is not None and https:
            try:
                status = _tunnel(sock, host, port, proxy)
            except OSError as exc:
                detail = f"no tunnel to {host}:{port} through the proxy ({exc}); {change}"
                checks.append(Check("tunnel", False, detail))
                return checks
            if status == 407:
                detail = (
                    "the proxy wants a user and password (407): put them in the proxy URL, "
                    f"http://user:password@host:port, in {proxy_setting} ({proxy_src})"
                )
                checks.append(Check("tunnel", False, detail))
                return checks
            if not 200 <= status < 300:
                detail = f"the proxy refused the tunnel to {host}:{port} ({status}); {change}"
                checks.append(Check("tunnel", False, detail))
                return checks
            checks.append(Check("tunnel", True, f"CONNECT {host}:{port} accepted"))
        if not https:
            checks.append(Check("TLS", None, "not used (plain http:// to this machine)"))
            return checks
        checks.append(_tls_check(sock, host, settings))
    finally:
        sock.close()
    return checks


def _tls_check(sock: socket.socket, host: str, settings: Settings) -> Check:
    try:
        context = ssl.create_default_context(cafile=settings.ca_bundle or None)
    except (OSError, ssl.SSLError) as exc:
        return Check(
            "TLS",
            False,
            f"cannot load the CA bundle {settings.ca_bundle} ({exc}); change ca_bundle "
            f"({settings.sources.get('ca_bundle', 'default')}) to a PEM file",
        )
    try:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            cert = tls.getpeercert() or {}
            issuer = dict(item[0] for item in cert.get("issuer", ()) if item)
            who = issuer.get("organizationName") or issuer.get("commonName") or "?"
            return Check(
                "TLS", True, f"{tls.version()}, certificate of {host} verified (issuer {who})"
            )
    except ssl.SSLCertVerificationError as exc:
        return Check(
            "TLS",
            False,
            f"the certificate of {host} could not be verified ({exc.verify_message}); "
            + CA_BUNDLE_HINT,
        )
    except (ssl.SSLError, OSError) as exc:
        return Check(
            "TLS",
            False,
            f"TLS handshake with {host} failed ({exc}); is api_url "
            f"({settings.sources.get('api_url', 'default')}) an HTTPS address?",
        )


def live_check(settings: Settings) -> str:
    """doctor --live: a tiny real build (one passed test) through Transport; its URL."""
    client = make_client(settings)
    scopes = [DOCTOR_BUILD]
    try:
        started = now_ms()
        build = {
            "name": DOCTOR_BUILD,
            "project_name": settings.project_name,
            "started_at": started,
            "framework": {"name": "behave", "version": host.behave_version()},
            "tags": ["behave-bstack-doctor"],
        }
        build_id = send(client, "build_start", build)["build_hashed_id"]
        test = {
            "name": "behave-bstack can report",
            "file_name": "behave-bstack-doctor",
            "scopes": scopes,
            "started_at": now_ms(),
        }
        test_id = send(client, "test_start", test, build=build_id)["uuid"]
        finished = {
            "result": "passed",
            "finished_at": now_ms(),
            "file_name": "behave-bstack-doctor",
            "scopes": scopes,
            "duration_in_ms": 1,
        }
        send(client, "test_finish", finished, build=build_id, target=test_id)
        send(client, "build_finish", {"finished_at": now_ms()}, build=build_id)
    finally:
        client.close()
    return build_url(build_id, settings.api_url)


def cmd_doctor(ctx: Context) -> int:
    settings = ctx.settings
    rows = [("setting", "value", "source")] + [tuple(r) for r in settings.describe()]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    ctx.out(f"{PROG} {__version__}: resolved configuration (highest source wins)")
    for name, value, source in rows:
        ctx.out(f"  {name:<{widths[0]}}  {value:<{widths[1]}}  {source}")
    ctx.out("")
    ctx.out("problems:" + ("" if settings.problems else " none"))
    for problem in settings.problems:
        ctx.out(f"  - {problem}")
    if not settings.enabled:
        ctx.out(f"note: reporting is switched off ({settings.sources.get('enabled')})")
    if settings.build_hashed_id:
        ctx.out(
            f"note: behave runs report into build {settings.build_hashed_id} and do not "
            "finish it (BROWSERSTACK_BUILD_HASHED_ID)"
        )

    ready = True
    if settings.has_credentials:
        ctx.out(
            f"credentials: username {settings.username!r} ({settings.sources.get('username')}),"
            f" access key set ({settings.sources.get('access_key')})"
        )
    else:
        ctx.out(f"credentials: MISSING: {NO_CREDENTIALS}")
        ready = False

    ctx.out("")
    ctx.out(f"connection to {settings.api_url}:")
    checks: list[Check] = []
    if not settings.api_url_ok:
        detail = next((p for p in settings.problems if "api_url" in p or "API" in p), "")
        checks.append(Check("URL", False, f"not allowed: {detail or settings.api_url}"))
    else:
        checks = network_checks(settings)
    for check in checks:
        mark = {True: "ok  ", False: "FAIL", None: "    "}[check.ok]
        ctx.out(f"  {mark}  {check.name:<6}  {check.detail}")
    reachable = all(check.ok is not False for check in checks)
    ready = ready and reachable

    code = EXIT_OK
    if ctx.args.live:
        if not (settings.has_credentials and reachable):
            ctx.out("live check: not run (fix the items above first)")
        else:
            try:
                url = live_check(settings)
                ctx.out(f"live check: ok: opened and finished a build: {url}")
            except CliError as exc:
                ctx.out(f"live check: FAIL: {exc}")
                ready = False
                code = exc.code if exc.code == EXIT_CREDENTIALS else EXIT_FAILED
    else:
        ctx.out(
            "credentials not checked against BrowserStack; `behave-bstack doctor --live` "
            "checks them by opening a tiny build"
        )
    ctx.out("")
    ctx.out("result: " + ("ready to report" if ready else "NOT ready (see above)"))
    if code == EXIT_OK and not ready:
        code = EXIT_FAILED
    return code


# --------------------------------------------------------------------------- serve


def cmd_serve(ctx: Context) -> int:
    from ..emulator import TraServer

    args = ctx.args
    printing = threading.Lock()  # held while the exports print: call lines come after them
    printing.acquire()
    holding = True
    try:
        server = TraServer(username=args.user, access_key=args.key, host=args.host, port=args.port)
        if not args.quiet:
            server.on_call = _call_printer(ctx, server, printing)
        server.start()
    except ValueError as exc:  # not a loopback address
        raise CliError(str(exc), EXIT_USAGE) from None
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc}", EXIT_FAILED) from None
    done = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: done.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        ctx.out(f"TRA emulator listening on {server.url} (Ctrl-C stops it); to report to it:")
        ctx.out(f"export BROWSERSTACK_API_URL={server.url}")
        ctx.out(f"export BROWSERSTACK_USERNAME={shlex.quote(args.user)}")
        if args.key == ctx.settings.access_key:
            ctx.out("# BROWSERSTACK_ACCESS_KEY: the access key you already use (not shown)")
        else:
            # The emulator's own key, chosen on this command line: not a BrowserStack secret.
            ctx.console.stdout.write(f"export BROWSERSTACK_ACCESS_KEY={shlex.quote(args.key)}\n")
            ctx.console.stdout.flush()
        ctx.out(f"# what it receives: {server.url}/ in a browser, or {server.url}/_emulator/state")
        if not args.quiet:
            ctx.out("# one line per call follows (--quiet: none)")
        printing.release()
        holding = False
        while not done.wait(0.5):
            pass
    finally:
        if holding:  # the exports could not be printed: let the call printers go
            printing.release()
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    state = server.state
    plural = journal_view.plural
    ctx.err(
        f"{PROG}: emulator stopped; it received {plural(len(state.builds), 'build')}, "
        f"{plural(len(state.tests), 'test run')}, {plural(len(state.hooks), 'hook run')}, "
        f"{plural(len(state.logs), 'log entry', 'log entries')}"
    )
    return EXIT_OK


def _call_printer(ctx: Context, server, printing: threading.Lock):
    """A line per API call, whole lines only: the emulator serves calls from many threads."""
    from ..emulator.call_line import call_line

    def print_call(call) -> None:
        line = call_line(call, server.state)
        with printing:
            ctx.out(line)

    return print_call


# --------------------------------------------------------------------------- parser


def _wrap(text: str) -> str:
    """Descriptions are written as paragraphs; the raw help formatter keeps line breaks."""
    return "\n\n".join(textwrap.fill(part, 79) for part in text.split("\n\n"))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage block
        raise CliError(f"{message} (see {self.prog} --help)", EXIT_USAGE, self.prog)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the package's log lines and tracebacks (never the access key)",
    )
    common.add_argument(
        "-D",
        dest="defines",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting, as behave's -D (e.g. -D bstack.journal_dir=out/journal)",
    )
    journal_dir = argparse.ArgumentParser(add_help=False)
    journal_dir.add_argument(
        "--journal-dir",
        metavar="DIR",
        help="where the journals are (default: the journal_dir setting, "
        "BSTACK_JOURNAL_DIR, .behave-bstack/journal)",
    )
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog=PROG,
        description=_wrap(
            "Deliver, inspect and check behave-bstack's reports to BrowserStack "
            "Test Reporting & Analytics."
        ),
        epilog=EXIT_CODES,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log lines and tracebacks (never the access key); also after the command",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str, parents=(), **kwargs) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=_wrap(kwargs.pop("description", help_text)),
            epilog=EXIT_CODES,
            formatter_class=formatter,
            parents=[common, *parents],
            **kwargs,
        )

    upload = command(
        "upload",
        "send what journals still hold",
        parents=[journal_dir],
        description="Send every call that journals still hold (runs made offline, or whose "
        "delivery was cut short), each exactly once. Runs that behave left open (killed, "
        "crashed) are closed as interrupted. A journal another process is delivering is "
        "skipped.",
    )
    upload.add_argument(
        "runs",
        nargs="*",
        metavar="RUN_DIR",
        help="journal directories, run ids or `latest` (default: every journal with unsent calls)",
    )
    upload.add_argument(
        "--timeout",
        type=_positive,
        default=120.0,
        metavar="S",
        help="stop after S seconds in all (default 120); what is unsent stays in the journal",
    )
    upload.set_defaults(func=cmd_upload)

    status = command(
        "status",
        "one line per journal",
        parents=[journal_dir],
        description="One line per journal: run id, when, what was journaled, how much the "
        "server acknowledged or refused, what is pending, and whether the run ended.",
    )
    status.add_argument("--json", action="store_true", help="a JSON list, one object per journal")
    status.set_defaults(func=cmd_status)

    clean = command(
        "clean",
        "remove fully delivered journals",
        parents=[journal_dir],
        description="Remove the journals whose calls the server acknowledged, every one "
        "(nothing pending, nothing refused). Journals with unsent or refused calls, and "
        "runs still going, are kept. After each behave run, fully delivered journals beyond "
        "the newest keep_journals (default 20) are removed automatically.",
    )
    clean.add_argument(
        "--all",
        action="store_true",
        help="also remove journals with unsent or refused calls (not those of running runs)",
    )
    clean.add_argument(
        "--dry-run", "-n", action="store_true", help="list what would be removed; remove nothing"
    )
    clean.set_defaults(func=cmd_clean)

    show = command(
        "show",
        "print a run from its journal, as a tree",
        parents=[journal_dir],
        description="Print a run from its journal: build, features, scenarios with their "
        "steps, hook runs and failures, as they are (or would be) sent. Works offline.",
    )
    show.add_argument(
        "run", nargs="?", default="latest", metavar="RUN_DIR", help="journal or run id (latest)"
    )
    show.add_argument("--logs", action="store_true", help="print the log entries too")
    show.set_defaults(func=cmd_show)

    doctor = command(
        "doctor",
        "check configuration, credentials and the connection",
        description="Print the resolved configuration, its problems, whether credentials "
        "are set, and check the way to the API host: DNS, TCP, proxy tunnel, TLS. Creates "
        "nothing in BrowserStack unless --live.",
    )
    doctor.add_argument(
        "--live",
        action="store_true",
        help=f"open and finish a tiny build ({DOCTOR_BUILD!r}, one passed test) and print its URL",
    )
    doctor.set_defaults(func=cmd_doctor)

    build = command(
        "build",
        "start or finish a build that several behave runs share",
        description="Start a build before parallel behave runs and finish it after them. "
        "Each behave run that finds BROWSERSTACK_BUILD_HASHED_ID reports into that build "
        "and does not finish it.\n\n"
        'eval "$(behave-bstack build start)"   ...   behave-bstack build finish',
    )
    build_commands = build.add_subparsers(dest="build_command", metavar="start|finish")
    start = build_commands.add_parser(
        "start",
        help="start a build; prints export BROWSERSTACK_BUILD_HASHED_ID=...",
        description=_wrap(
            "Start a build with the configured name and project and print its id "
            'as a shell export: eval "$(behave-bstack build start)".'
        ),
        epilog=EXIT_CODES,
        formatter_class=formatter,
        parents=[common],
    )
    start.add_argument("--name", help="build name (default: the build_name setting)")
    start.add_argument("--project", help="project name (default: the project_name setting)")
    start.add_argument(
        "--run-identifier",
        metavar="R",
        help="build_run_identifier: starts with the same project, name and R share one build",
    )
    start.add_argument("--json", action="store_true", help="print the id as JSON instead")
    start.set_defaults(func=cmd_build_start)
    finish = build_commands.add_parser(
        "finish",
        help="finish a build",
        description="Finish a build started with `behave-bstack build start`.",
        epilog=EXIT_CODES,
        formatter_class=formatter,
        parents=[common],
    )
    finish.add_argument(
        "build_id",
        nargs="?",
        metavar="ID",
        help="build id (default: $BROWSERSTACK_BUILD_HASHED_ID)",
    )
    finish.add_argument("--json", action="store_true", help="print the result as JSON")
    finish.set_defaults(func=cmd_build_finish)

    serve = command(
        "serve",
        "run the local TRA emulator in the foreground",
        description="Run a local emulator of the TRA API (it validates every call like the "
        "real contract) to try a setup offline. Prints the exports that point behave at it, "
        "then one line per API call it receives. Open its address in a browser to see the "
        "builds and tests it received; GET /_emulator/state?calls=1 gives them as JSON.",
    )
    serve.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    serve.add_argument("--host", default="127.0.0.1", help="loopback address (127.0.0.1)")
    serve.add_argument("--user", default="bs_user", help="username it accepts (bs_user)")
    serve.add_argument("--key", default="bs_key", help="access key it accepts (bs_key)")
    serve.add_argument("--quiet", action="store_true", help="no line per received call")
    serve.set_defaults(func=cmd_serve)

    from . import import_report  # `import`: its own module

    import_report.register(command)
    return parser


# --------------------------------------------------------------------------- main


def _early_secrets(argv: list[str], environ: Mapping[str, str]) -> list[str]:
    """Keys known before the settings are: so that even an argument error hides them."""
    found = [environ.get("BROWSERSTACK_ACCESS_KEY", "")]
    for item in argv:
        if "bstack.access_key=" in item:
            found.append(item.split("bstack.access_key=", 1)[1])
    return [secret.strip() for secret in found if secret.strip()]


def main(
    argv: list[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    environ = os.environ if environ is None else environ
    cwd = cwd or os.getcwd()
    console = Console(stdout or sys.stdout, stderr or sys.stderr)
    for secret in _early_secrets(argv, environ):
        console.hide(secret)
    debug = "--debug" in argv
    logger = logging.getLogger("behave_bstack")
    handler: logging.Handler = _LogHandler(console) if debug else logging.NullHandler()
    logger.addHandler(handler)
    saved = (logger.level, logger.propagate)
    # Delivery logs every refused call; the command prints its own summary instead.
    logger.setLevel(logging.DEBUG if debug else logging.CRITICAL)
    logger.propagate = False
    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "func", None):
            where = f"{PROG} build" if args.command == "build" else PROG
            raise CliError(f"choose a command (see {where} --help)", EXIT_USAGE, where)
        userdata = {**behave_userdata(cwd, environ.get("HOME")), **parse_defines(args.defines)}
        settings = load_settings(userdata, environ, cwd)
        console.hide(settings.access_key)
        if settings.debug and not debug:  # BSTACK_DEBUG / -D bstack.debug, as in behave runs
            debug = True
            logger.removeHandler(handler)
            handler = _LogHandler(console)
            logger.addHandler(handler)
            logger.setLevel(logging.DEBUG)
        return args.func(Context(args, console, settings, cwd, environ))
    except CliError as exc:
        console.err(f"{PROG}: {exc}")  # one prefix for every message (README "Messages")
        return exc.code
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except BrokenPipeError:  # `behave-bstack show | head`: the reader left, nothing to say
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_FAILED
    except KeyboardInterrupt:
        console.err(f"{PROG}: interrupted; what was not sent stays in the journal")
        return 130
    except Exception as exc:  # noqa: BLE001 - one line unless --debug
        if debug:
            console.err(traceback.format_exc().rstrip())
        console.err(
            f"{PROG}: internal error: {type(exc).__name__}: {exc}"
            + ("" if debug else " (run with --debug for the traceback)")
        )
        return EXIT_FAILED
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
