"""A CRM target gets a packet bigger than one batch in batches of whole documents: an order
arrives with every one of its lines, through the real processing path (Redis ledger, file
archive, replay) into each CRM's emulator."""

from __future__ import annotations

from packetworker.pipeline.archive import open_archive
from packetworker.pipeline.context import PipelineContext
from packetworker.pipeline.ledger import RedisLedger
from packetworker.pipeline.replay import replay
from packetworker.settings import Settings
from tests.crm_targets.harness import SAMPLES, harness_for, read_packet


def test_an_order_bigger_than_a_batch_reaches_dataverse_with_all_its_lines(
    tmp_path,
    redis_client,
) -> None:
    client, namespace = redis_client
    with harness_for("dataverse") as crm:
        ctx = PipelineContext(
            settings=Settings(_env_file=None, apply_batch_size=2),
            ledger=RedisLedger(client, namespace),
            archive=open_archive(f"file://{tmp_path / 'archive'}"),
            target=crm.target,
            portal_factory=lambda area: None,
            spool_dir=tmp_path / "spool",
        )
        summary = replay([str(SAMPLES / "sales-order.xml")], ctx=ctx, app_area="TEST")
        _, records = read_packet(SAMPLES / "sales-order.xml")

        assert summary.states == {"applied": 1}
        [order] = crm.emulator.records("salesorders")
        lines = crm.emulator.records("salesorderdetails")
        assert len(lines) == sum(r.table.name == "SalesLine" for r in records) > 2
        assert {d["_salesorderid_value"] for d in lines} == {order["salesorderid"]}
