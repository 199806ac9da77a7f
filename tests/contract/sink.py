"""A proxy sink on 127.0.0.1: every CLI's HTTP(S)_PROXY points here, so any egress is seen.

It records the request line of each connection (`CONNECT host:443`, `GET http://host/...`)
and answers 403, so nothing leaves the machine through it and a test can assert that nothing
but the model server was asked for.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class ProxySink:
    """`with ProxySink() as sink: ... sink.url ... sink.attempts`"""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ProxySink:
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._sock.close()

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            data = b""
            try:
                while b"\r\n" not in data and len(data) < 8192:
                    chunk = conn.recv(1024)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            line = data.split(b"\r\n", 1)[0].decode(errors="replace").strip()
            self.attempts.append(line or "<a connection that sent no request line>")
            with contextlib.suppress(OSError):
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
