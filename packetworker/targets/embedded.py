"""The `auto` target: real Business Central when credentials are configured, else an
embedded one.

With `BC_CLIENT_ID` set, `auto` is the `bc` target. Without it, a Business Central API
emulator (`packetworker.sandbox.bc.BCSandbox`) is started inside the process on a loopback
port, seeded with the master data the bundled samples refer to (`targets/bc/seed.toml`), and
the very same `BCTarget` talks to it over HTTP — OAuth, look-ups, `$batch`, deep inserts.
So `packetworker replay samples/` shows what the samples would create in BC, with nothing to
configure.

The emulator lives as long as the target (`close()` stops it) and keeps its data in memory:
each process starts from the seed again. That is enough for demos and replays; every worker
process of a deployment would get its own, so a real deployment sets the BC credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from packetworker.targets.base import Target
from packetworker.targets.bc.auth import BCAuth
from packetworker.targets.bc.client import BCClient
from packetworker.targets.bc.seed import load_seed, seed
from packetworker.targets.bc.target import DEFAULT_MAPPING, BCTarget
from packetworker.targets.emulated import start_emulated

if TYPE_CHECKING:
    from packetworker.sandbox.bc import BCSandbox
    from packetworker.settings import Settings

logger = logging.getLogger(__name__)


class EmbeddedBCTarget(BCTarget):
    """A `BCTarget` bound to an in-process emulator whose lifetime it owns."""

    def __init__(self, *, sandbox: BCSandbox, **options) -> None:
        super().__init__(**options)
        self.sandbox = sandbox

    @classmethod
    def start(
        cls,
        *,
        mapping: str = DEFAULT_MAPPING,
        payment_journal: str = "GENERAL",
        seed_path: str | None = None,
    ) -> EmbeddedBCTarget:
        """Start and seed an emulator, and a target connected to it (which `close()` stops)."""
        from packetworker.sandbox.bc import BCSandbox

        data = load_seed(seed_path)
        company = data.get("company", "CRONUS")

        def connect(sandbox: BCSandbox, _stop: Callable[[], None]) -> EmbeddedBCTarget:
            seed(sandbox, data)
            auth = BCAuth(
                token_url=sandbox.token_url,
                client_id=sandbox.client_id,
                client_secret=sandbox.client_secret,
            )
            client = BCClient(
                api_url=sandbox.api_url,
                tenant=sandbox.tenant,
                environment=sandbox.environment,
                auth=auth,
                company=company,
            )
            return cls(
                sandbox=sandbox, client=client, mapping=mapping, payment_journal=payment_journal
            )

        return start_emulated(BCSandbox(companies=(company,)), connect)

    def describe(self) -> Iterator[str]:
        lines = super().describe()
        first = next(lines)
        yield f"{first} in the embedded emulator (set BC_CLIENT_ID to use a real one):"
        yield from lines

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.sandbox.stop()


def target_from_settings(settings: Settings) -> Target:
    """`bc` when BC credentials are configured, else `bc` against an embedded emulator."""
    if settings.bc_client_id:
        from packetworker.targets.bc.target import target_from_settings as real_bc

        return real_bc(settings)
    try:
        import werkzeug  # noqa: F401 - the emulator's HTTP server (the `sandbox` extra)
    except ImportError:
        from packetworker.targets.plan import PlanTarget

        logger.warning(
            "no BC credentials and no emulator (pip install 'packetworker[sandbox]'); "
            "using the dry-run plan target"
        )
        return PlanTarget(output=settings.plan_output)
    return EmbeddedBCTarget.start(
        mapping=settings.bc_mapping or DEFAULT_MAPPING,
        payment_journal=settings.bc_payment_journal,
    )
