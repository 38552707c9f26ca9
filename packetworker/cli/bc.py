"""`packetworker bc …`: Business Central commands. `bc login` signs a BC user in with the
authorization-code grant (an Entra app with a client secret and a callback URL) and stores
the refresh token in Redis, where the workers find it and replace it at every refresh.

The browser comes back to `BC_REDIRECT_URI`: on `http://localhost:PORT/…` (or 127.0.0.1) a
small listener on 127.0.0.1 receives it; any other redirect URI (or `--paste`) means the
person pastes the URL the browser was sent to.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import redis
import typer
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from packetworker.cli.app import app, console, fail, settings
from packetworker.targets.bc.auth import BCAuth, is_delegated, token_store
from packetworker.targets.bc.errors import BCError
from packetworker.targets.entra import SignInError, code_from_redirect, redeem_code, start_sign_in
from packetworker.targets.required import NotConfigured

bc = typer.Typer(help="Business Central: sign-in for delegated set-ups.", no_args_is_help=True)
app.add_typer(bc, name="bc")

LOOPBACK = {"localhost", "127.0.0.1", "::1"}
DONE_PAGE = "Signed in to packetworker. You can close this window and return to the terminal."


@bc.command()
def login(
    paste: bool = typer.Option(
        False, "--paste", help="Paste the redirected URL instead of listening on the redirect URI."
    ),
    timeout: float = typer.Option(300.0, help="Seconds to wait for the browser to come back."),
) -> None:
    """Sign a Business Central user in (authorization code with PKCE and offline_access) and
    store the refresh token in Redis for the workers.

    Example: packetworker bc login --paste

    Settings: BC_TENANT, BC_CLIENT_ID, BC_CLIENT_SECRET, BC_REDIRECT_URI, REDIS_URL.
    """
    s = settings()
    missing = [
        name.upper()
        for name in ("bc_tenant", "bc_client_id", "bc_redirect_uri")
        if not getattr(s, name)
    ]
    if missing:
        raise NotConfigured("packetworker bc login", missing)
    store = token_store(s)
    auth = BCAuth.from_settings(s, store=store, delegated=True)
    sign_in = start_sign_in(
        authorize_url=s.bc_authorize_url.format(tenant=s.bc_tenant),
        client_id=s.bc_client_id,
        redirect_uri=s.bc_redirect_uri,
        scope=s.bc_scope,
    )
    listen = not paste and (urlsplit(s.bc_redirect_uri).hostname or "") in LOOPBACK
    receiver = Receiver(s.bc_redirect_uri) if listen else None
    console.print(
        "Open this URL in a browser and sign in as the Business Central user the worker acts as:",
        highlight=False,
    )
    typer.echo(sign_in.url)  # plain: never wrapped, so it can be copied whole
    try:
        if receiver is not None:
            console.print(f"Waiting for the browser on {s.bc_redirect_uri} …", highlight=False)
            redirected = receiver.wait(timeout)
            if redirected is None:
                raise fail(f"no redirect within {timeout:.0f} s; run `bc login` again")
        else:
            redirected = typer.prompt("Paste the URL the browser was redirected to")
        stored = redeem_code(auth, sign_in, code_from_redirect(sign_in, redirected.strip()))
    except (SignInError, BCError) as exc:
        raise fail(f"sign-in failed: {exc}") from None
    except redis.RedisError as exc:
        raise fail(f"cannot store the refresh token in Redis (REDIS_URL): {exc}") from None
    finally:
        if receiver is not None:
            receiver.close()
        auth.close()
    console.print(
        f"Signed in. The refresh token is stored in Redis ({store.key}) and replaced at "
        f"every refresh; {stored.describe()}.",
        highlight=False,
    )
    if not is_delegated(s):
        console.print("Set BC_AUTH_GRANT=authorization_code so the workers use it.")


class Receiver:
    """A one-shot HTTP listener on 127.0.0.1 for the redirect URI's port and path."""

    def __init__(self, redirect_uri: str) -> None:
        parts = urlsplit(redirect_uri)
        self.path = parts.path or "/"
        self._url: str | None = None
        self._arrived = threading.Event()
        self._server = make_server("127.0.0.1", parts.port or 80, self._app, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    @Request.application
    def _app(self, request: Request) -> Response:
        if request.path != self.path or self._url is not None:
            return Response("Not found.", status=404)
        self._url = request.url
        response = Response(DONE_PAGE, content_type="text/plain; charset=utf-8")
        # Said to have arrived only once the browser has its page: the command may end then.
        response.call_on_close(self._arrived.set)
        return response

    def wait(self, timeout: float) -> str | None:
        """The redirected URL, or None when the browser did not come back in time."""
        return self._url if self._arrived.wait(timeout) else None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
