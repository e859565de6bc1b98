"""A port is in use only if something listens on it: a socket that connects to
itself (its own port as the destination, which the kernel may pick for a free
port in the ephemeral range) does not count."""

from __future__ import annotations

import socket

from opr_shared.localinfra import LOOPBACK, port_in_use, reaches_a_listener


def test_a_socket_connected_to_itself_is_no_listener() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        own_port = sock.getsockname()[1]
        assert not reaches_a_listener(sock, LOOPBACK, own_port)
        assert sock.getpeername() == sock.getsockname()  # it did connect, to itself


def test_a_listener_is_found_and_a_closed_port_is_not() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_in_use(port)
    assert not port_in_use(port)
