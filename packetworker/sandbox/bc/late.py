"""Fault: BC writes that commit late (`packetworker.sandbox.late`), with BC's answer to a
request it dropped."""

from __future__ import annotations

from typing import NoReturn

from packetworker.sandbox import late
from packetworker.sandbox.bc.errors import ODataError


def _aborted() -> NoReturn:
    # business-central.md §5.3: BC aborts a request past its limit and answers 504.
    raise ODataError(504, "GatewayTimeout", "The request was aborted.")


class LateCommits(late.LateCommits):
    """`late.LateCommits` answering a dropped request as BC does."""

    def __init__(self) -> None:
        super().__init__(dropped=_aborted)
