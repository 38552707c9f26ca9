"""The `bc-emulator` target: the `bc` target against a Business Central emulator in process.

A Business Central API emulator (`packetworker.sandbox.bc.BCSandbox`) is started inside the
process on a loopback port, seeded with the master data the bundled samples refer to
(`sandbox/targets/seed.toml`), and the very same `BCTarget` talks to it over HTTP — OAuth,
look-ups, `$batch`, deep inserts. So `packetworker replay samples/` shows what the samples
would create in BC, with nothing to configure.

The emulator lives as long as the target (`close()` stops it) and keeps its data in memory:
each process starts from the seed again. That is for demos, replays and tests, and it is only
ever used when named: a deployment sets `TARGET=bc` and the BC credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from packetworker.request_budget import limiter_for
from packetworker.sandbox.bc import BCSandbox
from packetworker.sandbox.targets.emulated import start_emulated
from packetworker.sandbox.targets.seed import load_seed, seed
from packetworker.targets.base import Target
from packetworker.targets.bc.auth import BCAuth
from packetworker.targets.bc.client import BCClient
from packetworker.targets.bc.target import DEFAULT_MAPPING, BCTarget

if TYPE_CHECKING:
    from packetworker.settings import Settings


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
                limiter=limiter_for("bc"),  # the pipeline's shared budget, when it injects one
            )
            return cls(
                sandbox=sandbox, client=client, mapping=mapping, payment_journal=payment_journal
            )

        return start_emulated(BCSandbox(companies=(company,)), connect)

    def describe(self) -> Iterator[str]:
        lines = super().describe()
        first = next(lines)
        yield f"{first} in the embedded emulator (set TARGET=bc to use a real tenant):"
        yield from lines

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.sandbox.stop()


def target_from_settings(settings: Settings) -> Target:
    """`bc` against a fresh, seeded emulator (the BC credentials are not used)."""
    return EmbeddedBCTarget.start(
        mapping=settings.bc_mapping or DEFAULT_MAPPING,
        payment_journal=settings.bc_payment_journal,
    )
