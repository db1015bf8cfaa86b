"""A TCP proxy on 127.0.0.1 that can cut its connections mid-stream, to stage an outage of a server
without losing the server's state."""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    def __init__(self, target_port: int, cut_after_bytes: int | None = None):
        self.target_port, self.cut_after_bytes = target_port, cut_after_bytes
        self.forwarded = 0
        self.cut = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.cut.is_set():  # down: refuse by closing at once
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upload: bool) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                if upload:
                    with self._lock:
                        self.forwarded += len(data)
                        over = self.cut_after_bytes is not None and self.forwarded >= self.cut_after_bytes
                    if over:
                        self.go_down()
                        return
        except OSError:
            pass
        finally:
            for s in (source, sink):
                s.close()

    def go_down(self) -> None:
        """Reset every open connection and refuse new ones."""
        self.cut.set()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def come_back(self) -> None:
        self.cut_after_bytes = None
        self.cut.clear()

    def close(self) -> None:
        self.go_down()
        self._listener.close()
