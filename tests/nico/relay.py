"""A loopback TCP relay that rewrites one header line on the way in.

``--upstream nico=URL`` sends ``Host: <upstream netloc>`` as a reverse proxy must; a second cfgate
routes by ``Host`` and knows only ``nico.<domain>``, whose name does not resolve here. The relay
stands between them and turns the one line into the other (a streaming replace, correct across
read boundaries), so the real proxy talks to a real cfgate process.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class HeaderRelay:
    def __init__(self, target_port: int, old: bytes, new: bytes) -> None:
        self.target_port = target_port
        self.old, self.new = old, new
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port: int = self.listener.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name="nico-relay").start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, rewrite: bool) -> None:
        pending = b""
        try:
            while chunk := source.recv(65536):
                if not rewrite:
                    sink.sendall(chunk)
                    continue
                pending = (pending + chunk).replace(self.old, self.new)
                # Hold back only a tail that could still become the line (so nothing else waits).
                hold = next(
                    (
                        n
                        for n in range(min(len(self.old) - 1, len(pending)), 0, -1)
                        if self.old.startswith(pending[-n:])
                    ),
                    0,
                )
                sink.sendall(pending[: len(pending) - hold])
                pending = pending[len(pending) - hold :]
            if pending:
                sink.sendall(pending)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def close(self) -> None:
        self._closed.set()
        self.listener.close()

    def __enter__(self) -> HeaderRelay:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
