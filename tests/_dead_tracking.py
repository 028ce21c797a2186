"""Dead tracking servers on 127.0.0.1 that count the connections made to them.

`hung` accepts every connection and never answers (worse than down); `refusing` accepts and
resets each one at once (a server that drops every request). The count is what a test asserts:
how many times a pod tried, whatever MLflow's own retry settings say.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class DeadServer:
    """The tracking URI of a dead server and the connections it accepted so far."""

    url: str
    connections: int = 0
    _held: list[socket.socket] = field(default_factory=list)


@contextmanager
def dead_server(mode: str) -> Iterator[DeadServer]:
    """A counting listener: `hung` holds connections open silently, `refusing` resets them."""
    if mode not in {"hung", "refusing"}:
        raise ValueError(f"mode must be 'hung' or 'refusing', got {mode!r}")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    server = DeadServer(f"http://127.0.0.1:{listener.getsockname()[1]}")
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server.connections += 1
            if mode == "hung":
                server._held.append(connection)
            else:  # SO_LINGER 0: close with a reset, as a refusing server does
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        listener.close()
        for connection in server._held:
            connection.close()
        thread.join(timeout=5)


def closed_port() -> str:
    """A tracking URI on a loopback port nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"
