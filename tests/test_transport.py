"""The HTTP transport against real local servers: keep-alive, reconnects, error kinds,
TLS verification and CA bundles, CONNECT proxies, NO_PROXY and proxy authentication.
Nothing here leaves the machine: names under .invalid / .test are never resolved."""

from __future__ import annotations

import base64
import socket
import threading
import time

import faultkit as fk
import pytest

from behave_bstack.delivery.transport import Response, Sender, Transport, TransportError
from behave_bstack.emulator import TraServer

START = "/ext/v1/builds/start"
BUILD = {"name": "b", "project_name": "p", "started_at": "2025-11-11T10:30:05.123Z"}


class CountingTransport(Transport):
    """Counts the connections it opens."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.connects = 0

    def connect(self):
        self.connects += 1
        return super().connect()


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch):
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def srv():
    with TraServer(username="fk_user", access_key="fk_key") as server:
        yield server


def transport_for(srv, cls=Transport, **kwargs) -> Transport:
    return cls(srv.url, srv.username, srv.access_key, **kwargs)


def error_of(transport: Transport, path: str = START) -> TransportError:
    with pytest.raises(TransportError) as caught:
        transport.request("POST", path, BUILD)
    return caught.value


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    made = fk.make_cert(tmp_path_factory.mktemp("tls"), ("localhost", "api.example.test"))
    if made is None:
        pytest.skip("openssl is not available to make a test certificate")
    return made


# --- the request bytes ---------------------------------------------------------------------


def test_a_request_is_its_line_the_fixed_headers_and_a_compact_utf8_body():
    transport = Transport("http://127.0.0.1:8080/api", "u", "k")
    request = transport.build_request("POST", START, {"name": "für", "tags": ["a", 1]})
    body = '{"name":"für","tags":["a",1]}'.encode()
    assert request == (
        b"POST /api/ext/v1/builds/start HTTP/1.1\r\n"
        b"Host: 127.0.0.1:8080\r\n"
        b"Authorization: Basic " + base64.b64encode(b"u:k") + b"\r\n"
        b"Content-Type: application/json\r\n"
        b"Accept: application/json\r\n"
        b"User-Agent: behave-bstack\r\n"
        b"Connection: keep-alive\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def test_a_request_without_a_body_has_no_content_type_or_length():
    request = Transport("https://api.example.test", "u", "k").build_request("PUT", "/x", None)
    head = request.decode("latin-1")
    assert head.startswith("PUT /x HTTP/1.1\r\nHost: api.example.test\r\n")
    assert head.endswith("Connection: keep-alive\r\n\r\n")
    assert "Content-Type" not in head and "Content-Length" not in head


# --- keep-alive and reconnects -------------------------------------------------------------


def test_keep_alive_uses_one_connection(srv):
    transport = transport_for(srv, CountingTransport)
    build = transport.request("POST", START, BUILD).json()["build_hashed_id"]
    port = transport._local.conn.sock.getsockname()[1]
    for _ in range(5):
        test = {"name": "t", "file_name": "f", "scopes": ["s"], "started_at": BUILD["started_at"]}
        answer = transport.request("POST", f"/ext/v1/builds/{build}/tests/start", test)
        assert answer.status == 200 and answer.json()["uuid"]
    assert transport.connects == 1
    assert transport._local.conn.sock.getsockname()[1] == port
    assert len(srv.calls) == 6


def test_each_thread_has_its_own_connection(srv):
    transport = transport_for(srv, CountingTransport)
    statuses = []

    def work() -> None:
        for _ in range(3):
            statuses.append(transport.request("POST", START, BUILD).status)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert statuses == [200] * 12
    assert transport.connects == 4


def test_reconnects_after_the_server_closed_the_connection(srv):
    transport = transport_for(srv, CountingTransport)
    assert transport.request("POST", START, BUILD).status == 200
    srv.stop()  # closes every kept-alive connection
    srv.start()  # same port
    assert transport.request("POST", START, BUILD).status == 200
    assert transport.connects == 2
    assert len(srv.state.builds) == 2


def test_a_dropped_kept_alive_connection_is_retried_once_at_once(srv):
    transport = transport_for(srv, CountingTransport)
    assert transport.request("POST", START, BUILD).status == 200
    srv.faults.drop(count=1, mode="close")  # read the request, close without answering
    assert transport.request("POST", START, BUILD).status == 200
    assert transport.connects == 2
    assert [c.fault for c in srv.calls] == [None, "drop", None]


def test_a_dropped_fresh_connection_is_an_error(srv):
    srv.faults.drop(count=1, mode="close")
    error = error_of(transport_for(srv))
    assert error.kind == "connection" and not error.fatal
    assert "closed without an answer" in str(error) and srv.url in str(error)


# --- error kinds --------------------------------------------------------------------------


def test_connection_refused():
    port = fk.free_port()
    error = error_of(Transport(f"http://127.0.0.1:{port}", "u", "k", timeout=2))
    assert error.kind == "connection" and not error.fatal
    assert str(error) == f"connection refused by http://127.0.0.1:{port}"


def test_timeout(srv):
    srv.faults.latency(1000)
    error = error_of(transport_for(srv, timeout=0.2))
    assert error.kind == "timeout" and not error.fatal
    assert str(error) == f"no answer from {srv.url} within 0.2 s"


def test_unresolvable_host():
    error = error_of(Transport("https://nonexistent.invalid", "u", "k", timeout=2))
    assert error.kind == "dns" and not error.fatal
    assert "cannot resolve nonexistent.invalid" in str(error)


@pytest.mark.parametrize("mode", ["partial", "reset"])
def test_broken_answers(srv, mode):
    srv.faults.drop(count=2, mode=mode)  # two: the fresh-connection call is not retried
    error = error_of(transport_for(srv, timeout=2))
    assert error.kind in ("protocol", "connection") and not error.fatal
    assert srv.url in str(error)


def test_http_errors_are_answers_not_exceptions(srv):
    srv.faults.unauthorized(True)
    answer = transport_for(srv).request("POST", START, BUILD)
    assert answer.status == 401 and answer.json() is None
    assert answer.message() == "HTTP Basic: Access denied."
    srv.faults.clear()
    srv.faults.fail(503, count=1, retry_after=7)
    answer = transport_for(srv).request("POST", START, BUILD)
    assert answer.status == 503 and answer.headers["retry-after"] == "7"
    assert answer.message() == "emulated 503 Service Unavailable"


def test_response_message_is_one_short_line():
    long = Response(500, {}, ("x\n" * 400).encode())
    assert "\n" not in long.message() and len(long.message()) <= 500
    assert Response(502, {}, b"").message() == "Bad Gateway"
    assert Response(422, {}, b'{"message": "bad\\n  field"}').message() == "bad field"


# --- TLS ----------------------------------------------------------------------------------


def test_tls_unknown_ca_is_fatal_and_names_the_settings(cert):
    with fk.TlsServer(*cert) as server:
        error = error_of(Transport(f"https://localhost:{server.port}", "u", "k", timeout=5))
    assert error.kind == "tls" and error.fatal
    message = str(error)
    assert "could not be verified" in message and "localhost" in message
    for setting in ("proxyCaCertificate", "BROWSERSTACK_CA_BUNDLE", "bstack.ca_bundle"):
        assert setting in message
    assert server.seen == []


def test_tls_with_the_ca_bundle_works(cert):
    with fk.TlsServer(*cert) as server:
        transport = Transport(
            f"https://localhost:{server.port}", "u", "k", timeout=5, ca_bundle=str(cert[0])
        )
        assert transport.request("POST", START, BUILD).status == 200
        assert transport.request("POST", START, BUILD).json()["uuid"]
    assert len(server.seen) == 2
    assert server.seen[0][2] == "Basic " + base64.b64encode(b"u:k").decode()


def test_tls_hostname_mismatch_is_fatal(cert, tmp_path):
    other = fk.make_cert(tmp_path, ("other.test",))  # valid for other.test and 127.0.0.1 only
    with fk.TlsServer(*other) as server:
        transport = Transport(
            f"https://localhost:{server.port}", "u", "k", timeout=5, ca_bundle=str(other[0])
        )
        error = error_of(transport)
    assert error.kind == "tls" and error.fatal
    assert "localhost" in str(error) and "mismatch" in str(error).lower()


# --- proxies ------------------------------------------------------------------------------


def test_https_goes_through_a_connect_proxy(cert):
    with fk.TlsServer(*cert) as server, fk.ConnectProxy(server.port) as proxy:
        transport = Transport(
            "https://api.example.test",
            "u",
            "k",
            timeout=5,
            ca_bundle=str(cert[0]),
            https_proxy=proxy.url,
        )
        assert f"via proxy 127.0.0.1:{proxy.port}" in transport.describe_route()
        for _ in range(3):
            assert transport.request("POST", START, BUILD).status == 200
    # One tunnel, kept alive; the API host's name went to the proxy, TLS inside the tunnel.
    assert [r.rsplit(" ", 1)[0] for r in proxy.requests] == ["CONNECT api.example.test:443"]
    assert len(server.seen) == 3 and server.seen[0][0] == "POST"


def test_proxy_from_the_environment(cert, monkeypatch):
    with fk.TlsServer(*cert) as server, fk.ConnectProxy(server.port) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        transport = Transport(
            "https://api.example.test", "u", "k", timeout=5, ca_bundle=str(cert[0])
        )
        assert transport.request("POST", START, BUILD).status == 200
    assert [r.rsplit(" ", 1)[0] for r in proxy.requests] == ["CONNECT api.example.test:443"]


@pytest.mark.parametrize("no_proxy", ["example.test", ".example.test", "api.example.test", "*"])
def test_no_proxy_bypasses_the_proxy(no_proxy):
    transport = Transport(
        "https://api.example.test", "u", "k", https_proxy="http://127.0.0.1:9", no_proxy=no_proxy
    )
    assert transport.proxy is None
    assert "via proxy" not in transport.describe_route()


def test_no_proxy_from_the_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "localhost,example.test")
    assert Transport("https://api.example.test", "u", "k").proxy is None
    assert Transport("https://api.other.test", "u", "k").proxy is not None


def test_loopback_is_never_proxied(srv, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    transport = Transport(srv.url, srv.username, srv.access_key, http_proxy="http://127.0.0.1:9")
    assert transport.proxy is None
    assert transport.request("POST", START, BUILD).status == 200


def test_proxy_407_is_fatal_and_hides_the_password(cert):
    wanted = "Basic " + base64.b64encode(b"puser:right-pass").decode()
    with fk.TlsServer(*cert) as server, fk.ConnectProxy(server.port, wanted) as proxy:
        for url in (proxy.url, f"http://puser:wrong-pass@127.0.0.1:{proxy.port}"):
            transport = Transport("https://api.example.test", "u", "k", timeout=5, https_proxy=url)
            error = error_of(transport)
            assert error.kind == "proxy" and error.fatal
            assert "407" in str(error) and "proxy" in str(error)
            assert "wrong-pass" not in str(error) and "wrong-pass" not in repr(transport)
        # With the right user and password the tunnel opens.
        transport = Transport(
            "https://api.example.test",
            "u",
            "k",
            timeout=5,
            ca_bundle=str(cert[0]),
            https_proxy=f"http://puser:right-pass@127.0.0.1:{proxy.port}",
        )
        assert transport.request("POST", START, BUILD).status == 200
    assert len(server.seen) == 1


def test_unreachable_proxy_is_a_retryable_error():
    transport = Transport(
        "https://api.example.test", "u", "k", timeout=2, https_proxy=f"127.0.0.1:{fk.free_port()}"
    )
    error = error_of(transport)
    assert not error.fatal and error.kind == "connection"
    assert "via proxy 127.0.0.1" in str(error)


# --- the Sender's connections ---------------------------------------------------------------

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


class _PairConnection:
    """What _Wire needs of an http.client connection, over one end of a socket pair."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def connect(self) -> None:
        pass

    def close(self) -> None:
        self.sock.close()


class PairTransport:
    """Connections to a 'server' that is the test itself: the other ends, in order."""

    timeout = 5.0

    def __init__(self) -> None:
        self.server_ends: list[socket.socket] = []

    def connect(self) -> _PairConnection:
        ours, theirs = socket.socketpair()
        self.server_ends.append(theirs)
        return _PairConnection(ours)

    def build_request(self, method: str, path: str, body: dict | None) -> bytes:
        return f"{method} {path} HTTP/1.1\r\n\r\n".encode()

    def explain(self, exc: BaseException, connecting: bool = False) -> TransportError:
        return TransportError("connection", repr(exc))


def answered(sender: Sender, wanted: int) -> list:
    done: list = []
    deadline = time.monotonic() + 5
    while len(done) < wanted and time.monotonic() < deadline:
        done += sender.poll(0.05)
    return [(key, response.status if response else error.kind) for key, response, error in done]


@pytest.mark.parametrize("server_does", ["close", "send stray bytes"])
def test_an_idle_connection_the_server_closed_is_dropped_before_it_is_reused(server_does):
    transport = PairTransport()
    sender = Sender(transport, 2)
    sender.submit("a", "POST", "/a", None)
    sender.submit("b", "POST", "/b", None)
    first, second = transport.server_ends
    first.sendall(ANSWER)
    assert answered(sender, 1) == [("a", 200)]
    assert len(sender.idle) == 1
    if server_does == "close":
        first.close()
    else:
        first.sendall(ANSWER)  # an answer to nothing: the connection is out of step
    assert sender.poll(0.1) == []  # b is still in flight: the loop watches a's connection
    assert sender.idle == []
    second.sendall(ANSWER)
    assert answered(sender, 1) == [("b", 200)]
    sender.submit("c", "POST", "/c", None)  # over b's kept-alive connection
    assert len(transport.server_ends) == 2
    assert second.recv(100) == b"POST /b HTTP/1.1\r\n\r\nPOST /c HTTP/1.1\r\n\r\n"
    sender.close()


def test_loopback_is_an_address_or_name_not_a_prefix():
    from behave_bstack.delivery.transport import is_loopback

    for host in ("127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST.", "[::1]", "a.localhost"):
        assert is_loopback(host), host
    for host in ("127.evil.com", "127.0.0.1.nip.io", "example.com", "", None, "10.0.0.1"):
        assert not is_loopback(host), host
