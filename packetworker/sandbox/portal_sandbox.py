"""`PortalSandbox`: the ERP API, its queue and its S3 storage, on loopback, in-process."""

from __future__ import annotations

from packetworker.sandbox.admin import PREFIX, AdminApp
from packetworker.sandbox.base import ServerThread
from packetworker.sandbox.portal_app import PortalApp
from packetworker.sandbox.portal_state import PortalState
from packetworker.sandbox.wsgi import Instrumented


class PortalSandbox(PortalState):
    """A real HTTP server emulating the Dynamics Mobile ERP API for dev, demos and tests.

    Use as a context manager (or `start()`/`stop()`); point the client at `url`.
    """

    _server: ServerThread | None = None

    def start(self) -> PortalSandbox:
        self.storage.on_put = self._uploaded_key
        self.storage.start(self._instrument(self.storage.app, "storage"))
        app = self._instrument(AdminApp(self, PortalApp(self)), "portal", exempt=PREFIX)
        self._server = ServerThread(app, host=self.host, port=self.port)
        self._server.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases requests held by faults.slow
        if self._server is not None:
            self._server.stop()
        self.storage.stop()

    def __enter__(self) -> PortalSandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return self._server.base_url

    @property
    def url(self) -> str:
        """The ERP API base URL (use as `dm_api_url`)."""
        return f"{self.base_url}/mobile"

    @property
    def admin_url(self) -> str:
        return f"{self.base_url}{PREFIX.rstrip('/')}"

    @property
    def storage_hosts(self) -> str:
        """What `DM_STORAGE_HTTP_HOSTS` must hold for a worker to fetch from this sandbox."""
        return self.host

    @property
    def storage_url(self) -> str:
        assert self.storage.front is not None
        return self.storage.front.base_url

    def _instrument(self, app: object, server: str, exempt: str | None = None) -> Instrumented:
        return Instrumented(
            app,  # type: ignore[arg-type]
            server=server,
            faults=self.faults,
            log=self._log,
            stopping=self._stopping,
            exempt_prefix=exempt,
        )
