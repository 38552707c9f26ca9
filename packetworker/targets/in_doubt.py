"""`InDoubt`: one `apply` call's view of its packet's writes in doubt (pure apart from the
journal it is given).

The rules, for a target that checks by look-up what exists before it writes:

1. Before a write is sent it is recorded in the journal (`sending`).
2. A definitive answer (2xx, or a 4xx refusal), or certainty that it never left (no
   connection), clears it (`settled`). Any other failure leaves it in doubt (`unknown`).
3. On a later run, a look-up that finds a write in doubt clears it (`found`): it committed
   after all. One the look-up does not find may be re-sent only once `window` seconds (the
   service's longest request time) have passed since it was sent (`check_unsent`); until
   then the run stops with `WriteInDoubt`, carrying when to look again.

Without a journal (a target used outside the pipeline) nothing is recorded, so only rule 3's
look-up protects a re-send. Every target uses this one helper: BC for its `$batch` creates,
the CRM targets for their creates (`write` sends one journalled request).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from packetworker.targets.base import (
    PendingWrite,
    TargetError,
    WriteInDoubt,
    WriteJournal,
    outcome_known,
)

T = TypeVar("T")


def outcome_unknown(error: TargetError, not_run: tuple[type[BaseException], ...] = ()) -> bool:
    """Whether a failed write may still have run: a transient failure (no answer, a timeout,
    408/5xx) that is not one of `not_run` (throttled, never connected). A refusal — a 4xx,
    or a 5xx the service explains as permanent (Dataverse's duplicate rule) — ran or not,
    but is known."""
    if isinstance(error, not_run) or not error.transient:
        return False
    return not outcome_known(getattr(error, "status", None))


class InDoubt:
    """The writes in doubt of one packet, as one `apply` call sees and changes them."""

    def __init__(
        self, journal: WriteJournal | None, packet_id: str, *, window: float, service: str
    ) -> None:
        self.journal = journal
        self.packet_id = packet_id
        self.window = window
        self.service = service
        self.pending: dict[str, PendingWrite] = (
            journal.writes_in_doubt(packet_id) if journal is not None else {}
        )

    def __contains__(self, key: object) -> bool:
        return key in self.pending

    def found(self, keys: Iterable[str]) -> list[str]:
        """A look-up found these writes: the ones in doubt committed. Returns those."""
        committed = [key for key in keys if key in self.pending]
        self._clear(committed)
        return committed

    def check_unsent(self, keys: Iterable[str]) -> None:
        """`keys` are about to be sent because a look-up did not find them. Raise
        `WriteInDoubt` if one of them was sent less than `window` seconds ago: it may still
        commit, and sending it again could make a second record."""
        if self.journal is None:
            return
        now = self.journal.clock()
        waits = {
            key: self.pending[key].sent_at + self.window - now
            for key in keys
            if key in self.pending
        }
        waits = {key: wait for key, wait in waits.items() if wait > 0}
        if waits:
            first = min(waits)
            raise WriteInDoubt(
                f"{len(waits)} write(s) sent to {self.service} are in doubt and not found yet "
                f"(first: {first}); re-sent only when still absent "
                f"{self.window:g} s after sending",
                retry_after=max(waits.values()),
            )

    def sending(self, writes: Sequence[tuple[str, str, Mapping[str, str]]]) -> None:
        """Record (key, operation, business keys) of each write about to be sent."""
        if self.journal is None or not writes:
            return
        now = self.journal.clock()
        records = [PendingWrite(key, op, dict(keys), now) for key, op, keys in writes]
        self.journal.record_in_doubt(self.packet_id, records)
        self.pending.update((r.key, r) for r in records)

    def write(
        self,
        key: str,
        operation: str,
        keys: Mapping[str, str],
        send: Callable[[], T],
        *,
        not_run: tuple[type[BaseException], ...] = (),
    ) -> T:
        """Send one write journalled under `key`: recorded first, cleared by its answer or a
        definitive refusal (re-raised); a failure that leaves its outcome unknown raises
        `WriteInDoubt` instead. Anything else (a crash) leaves it recorded."""
        self.sending([(key, operation, keys)])
        try:
            result = send()
        except TargetError as error:
            if outcome_unknown(error, not_run):
                raise self.unknown([key], f"{self.service}: {error.message}") from None
            self.settled([key])
            raise
        self.settled([key])
        return result

    def settled(self, keys: Iterable[str]) -> None:
        """Their outcome is known (answered, refused, or certainly never sent)."""
        self._clear([key for key in keys if key in self.pending])

    def unknown(self, keys: Sequence[str], reason: str) -> WriteInDoubt:
        """The error for writes whose outcome is unknown: look again after `window`."""
        return WriteInDoubt(
            f"{reason}; {len(keys)} write(s) in doubt, looked up again before any re-send",
            retry_after=self.window,
        )

    def _clear(self, keys: list[str]) -> None:
        if not keys:
            return
        for key in keys:
            self.pending.pop(key, None)
        if self.journal is not None:
            self.journal.clear_in_doubt(self.packet_id, keys)
