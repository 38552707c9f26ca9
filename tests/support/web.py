"""The `web` process's own waitress server (`packetworker.web.make_server`), in a thread."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any

from packetworker.settings import Settings
from packetworker.web import make_server


class Waitress:
    """`make_server`'s waitress on 127.0.0.1 (an ephemeral port), run in a thread."""

    def __init__(self, app: Callable[..., Any], **settings: object) -> None:
        options = {"web_host": "127.0.0.1", "web_port": 0, "web_threads": 2, **settings}
        self.server = make_server(app, Settings(**options))
        self.port = self.server.effective_port
        self.root = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(OSError):  # the loop's listener closed under it by close()
            self.server.run()

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def close(self) -> None:
        self.server.close()
        for channel in list(self.server._map.values()):
            channel.close()
        self.server.task_dispatcher.shutdown()
        self._thread.join(timeout=10)
