"""Incremental XML writer in the vendor connector's style (docs §4.1, §4.2).

UTF-8 with a double-quoted declaration, root `NavMobileSync` with lower-case `salesmancode`,
table attributes kept, null fields left out, no whitespace between elements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import groupby
from typing import BinaryIO

from lxml import etree

from .model import PacketHeader, Record, Table

DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def _table_of(item: Record | Table) -> Table:
    return item if isinstance(item, Table) else item.table


def write_xml(
    sink: BinaryIO,
    header: PacketHeader,
    records: Iterable[Record | Table],
    *,
    status_word: Callable[[Record], str | None],
) -> None:
    # lxml's own declaration uses single quotes; the connector writes double quotes.
    sink.write(DECLARATION)
    root = {"salesmancode": header.salesmancode, **header.attributes}
    done: set[str] = set()
    with etree.xmlfile(sink, encoding="UTF-8") as xf, xf.element("NavMobileSync", root):
        for table, group in groupby(records, key=_table_of):
            if table.name in done:
                raise ValueError(f"records of table {table.name!r} are not contiguous")
            done.add(table.name)
            attributes = {"tablename": table.name, **table.attributes}
            with xf.element("table", attributes):
                for record in group:
                    if not isinstance(record, Table):  # a Table only announces itself
                        xf.write(_record_element(record, status_word(record)))


def _record_element(record: Record, status: str | None) -> etree._Element:
    r = etree.Element("r") if status is None else etree.Element("r", status=status)
    sub = etree.SubElement
    for name, value in record.fields.items():
        if value is not None:
            try:
                sub(r, name).text = value
            except ValueError as exc:
                raise ValueError(
                    f"field {name!r} of table {record.table.name!r} cannot be written as XML: {exc}"
                ) from None
    return r
