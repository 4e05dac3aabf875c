import socket

from mash.health import broker_answers


def test_a_listening_broker_answers_and_a_closed_port_does_not() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert broker_answers(f"127.0.0.1:1,127.0.0.1:{port}")  # any one of the bootstrap list
    assert not broker_answers(f"127.0.0.1:{port}", timeout_s=0.5)
    assert not broker_answers("not-an-address")
