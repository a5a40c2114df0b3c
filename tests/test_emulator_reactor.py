"""The emulator's reactor (reactor.py): plain calls on keep-alive connections are answered by
one thread; anything else is handed, bytes and all, to a thread running the handler."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from test_emulator import AUTH, Client, bstart, tfinish, tstart

from behave_bstack.emulator import TraServer


@pytest.fixture
def srv() -> TraServer:
    with TraServer(username="bs_user", access_key="bs_key") as server:
        yield server


def raw_request(method: str, path: str, body: object, close: bool = False) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    )
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + data


def read_answers(sock: socket.socket, count: int) -> list[tuple[int, dict]]:
    """`count` HTTP answers from a socket, as (status, JSON body)."""
    data, answers = b"", []
    sock.settimeout(5)
    while len(answers) < count:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head = data[:end].decode()
            length = int(head.lower().split("content-length:")[1].split("\r\n")[0])
            if len(data) >= end + 4 + length:
                body = data[end + 4 : end + 4 + length]
                answers.append((int(head.split()[1]), json.loads(body)))
                data = data[end + 4 + length :]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(answers)} answers"
        data += chunk
    return answers


def test_keep_alive_connections_are_served_without_a_thread_each(srv: TraServer) -> None:
    before = threading.active_count()
    clients = [Client(srv) for _ in range(12)]
    try:
        build = clients[0].build()
        for client in clients:
            run = client.test(build)
            client.ok("PUT", f"/ext/v1/builds/{build}/tests/{run}/finish", tfinish())
        assert threading.active_count() <= before + 1  # not one more per connection
        assert len(srv.state.tests_in(build)) == 12
    finally:
        for client in clients:
            client.close()


def test_a_fault_set_meanwhile_applies_to_the_next_call_on_a_served_connection(
    srv: TraServer,
) -> None:
    client = Client(srv)
    try:
        build = client.build()  # answered by the reactor
        srv.faults.fail(503, count=1)
        assert client.call("POST", f"/ext/v1/builds/{build}/tests/start", tstart()).status == 503
        srv.faults.clear()
        run = client.test(build)  # the same connection, now in its own thread
        client.ok("PUT", f"/ext/v1/builds/{build}/tests/{run}/finish", tfinish())
    finally:
        client.close()
    assert [c.status for c in srv.calls] == [200, 503, 200, 200]


def test_a_request_in_pieces_and_requests_sent_together_are_all_answered(
    srv: TraServer,
) -> None:
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        first = raw_request("POST", "/ext/v1/builds/start", bstart())
        for piece in (first[:7], first[7:40], first[40:-5], first[-5:]):
            sock.sendall(piece)
            time.sleep(0.02)  # each piece arrives on its own
        [(status, body)] = read_answers(sock, 1)
        assert status == 200
        build = body["build_hashed_id"]
        starts = b"".join(
            raw_request("POST", f"/ext/v1/builds/{build}/tests/start", tstart(name=f"t{i}"))
            for i in range(5)
        )
        sock.sendall(starts)  # pipelined: five requests in one write
        answers = read_answers(sock, 5)
    assert [status for status, _ in answers] == [200] * 5
    names = [srv.state.tests[body["uuid"]].start["name"] for _, body in answers]
    assert names == [f"t{i}" for i in range(5)]


def test_control_calls_and_connection_close_go_to_the_handler(srv: TraServer) -> None:
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(raw_request("POST", "/ext/v1/builds/start", bstart()))
        assert read_answers(sock, 1)[0][0] == 200
        sock.sendall(b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_answers(sock, 1) == [(200, {"success": True})]
        sock.sendall(raw_request("POST", "/ext/v1/builds/start", bstart(), close=True))
        assert read_answers(sock, 1)[0][0] == 200
        sock.settimeout(5)
        assert sock.recv(100) == b""  # closed, as asked
    assert srv.state.to_json()["calls"] == 2


def test_a_body_too_big_to_keep_in_the_reactor_is_still_read_whole(srv: TraServer) -> None:
    client = Client(srv)
    try:
        build = client.build()
        answer = client.call("POST", "/ext/v1/builds/start", bstart(name="x" * (2 << 20)))
        assert answer.status == 422 and "name" in answer.json["message"]
        assert client.build() != ""  # the connection still works
    finally:
        client.close()
    assert build


def test_stop_closes_the_connections_the_reactor_serves() -> None:
    server = TraServer(username="bs_user", access_key="bs_key").start()
    sock = socket.create_connection(("127.0.0.1", server.port))
    try:
        sock.sendall(raw_request("POST", "/ext/v1/builds/start", bstart()))
        assert read_answers(sock, 1)[0][0] == 200
        server.stop()
        sock.settimeout(5)
        assert sock.recv(100) == b""
    finally:
        sock.close()


def test_answers_keep_their_order_when_a_connection_is_handed_off_midway(
    srv: TraServer,
) -> None:
    health = b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    build = raw_request("POST", "/ext/v1/builds/start", bstart())
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(build + build + health + build)  # the third goes to the handler
        answers = read_answers(sock, 4)
    assert [sorted(body) for _, body in answers] == [
        ["build_hashed_id", "success"],
        ["build_hashed_id", "success"],
        ["success"],
        ["build_hashed_id", "success"],
    ]


def test_a_bug_answering_one_connection_leaves_the_others_served(srv: TraServer, capfd) -> None:
    answer = srv._answer_plain

    def broken(method, path, headers, raw):
        if "boom" in path:
            raise RuntimeError("emulator bug")
        return answer(method, path, headers, raw)

    srv._answer_plain = broken
    other = Client(srv)
    try:
        other.build()
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.sendall(raw_request("POST", "/ext/v1/builds/boom/finish", {}))
            sock.settimeout(5)
            assert sock.recv(100) == b""  # that connection is closed
        assert other.build()  # the other one is still answered
    finally:
        other.close()
    assert "emulator bug" in capfd.readouterr().err
