"""doctor's network probes towards the API host, the way delivery connects: DNS (with a
deadline), TCP, the proxy's CONNECT tunnel and the TLS handshake; each failure names the
setting to change.

Runs in the command's process (DNS in a helper thread of it, for the deadline).
"""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..delivery.transport import Transport
from ..settings.config import Settings

CA_BUNDLE_HINT = (
    "if a proxy or firewall re-signs TLS, give its CA certificate with BROWSERSTACK_CA_BUNDLE, "
    "proxyCaCertificate in browserstack.yml or -D bstack.ca_bundle"
)


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
