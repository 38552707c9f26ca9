"""The pending queue model (pure): receipt handles and visibility, as SQS does them."""

from __future__ import annotations

from packetworker.sandbox.queue import Message, PendingQueue


class Now:
    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


def message(packet_id: str = "p1", packet_type: str = "data") -> Message:
    return Message(
        id=packet_id,
        url=f"push-done/xml/prod/A/20240101/u/{packet_id}.xml",
        user_name="u",
        on_date="2024-01-01T00:00:00.000Z",
        size=1,
        company_id="C",
        packet_type=packet_type,
    )


def make_queue(now: Now) -> PendingQueue:
    queue = PendingQueue(visibility_timeout=30, now=now)
    queue.add(message("p1"))
    return queue


def test_receive_hides_until_the_timeout_then_gives_a_new_handle():
    now = Now()
    queue = make_queue(now)

    [first] = queue.receive("packet")
    hidden = queue.receive("packet")
    now.value += 30
    [second] = queue.receive("packet")

    assert hidden == []
    assert first["receiptHandle"] != second["receiptHandle"]


def test_only_the_latest_handle_deletes():
    now = Now()
    queue = make_queue(now)
    [first] = queue.receive("packet")
    now.value += 31
    [second] = queue.receive("packet")

    assert queue.delete("p1", first["receiptHandle"]) is False
    assert queue.pending_ids() == ["p1"]
    assert queue.delete("p1", second["receiptHandle"]) is True
    assert (queue.pending_ids(), queue.done_ids()) == ([], ["p1"])


def test_deleting_again_succeeds_like_sqs():
    queue = make_queue(Now())
    [entry] = queue.receive("packet")
    queue.delete("p1", entry["receiptHandle"])

    assert queue.delete("p1", entry["receiptHandle"]) is True
    assert queue.done_ids() == ["p1"]


def test_unknown_id_is_not_deleted():
    assert make_queue(Now()).delete("nope", "AQEBx") is False


def test_file_list_and_packet_list_are_separate():
    queue = make_queue(Now())
    queue.add(message("img", packet_type="image"))

    assert [e["id"] for e in queue.receive("file")] == ["img"]
    assert [e["id"] for e in queue.receive("packet")] == ["p1"]


def test_entry_fields_follow_the_real_order():
    queue = make_queue(Now())

    [entry] = queue.receive("packet")

    assert list(entry) == [
        "url", "receiptHandle", "id", "onDate", "userName", "size",
        "companyId", "appCode", "packetType",
    ]  # fmt: skip
