"""Loading mapping files: shipped names, paths, and errors that name file, table and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from packetworker.targets.mapping import (
    MappingError,
    load_mapping,
    parse_mapping,
    shipped_mappings,
)


def error_of(text: str) -> str:
    with pytest.raises(MappingError) as caught:
        parse_mapping(text, source="my.toml")
    return str(caught.value)


def test_the_shipped_mappings_are_listed_by_name() -> None:
    assert shipped_mappings() == [
        "bc-field-sales",
        "crmaas-field-sales",
        "dataverse-field-sales",
        "ipaas-contact",
    ]


@pytest.mark.parametrize(
    "name", ["bc-field-sales", "crmaas-field-sales", "dataverse-field-sales", "ipaas-contact"]
)
def test_every_shipped_mapping_loads_under_its_own_name(name: str) -> None:
    assert load_mapping(name).name == name


def test_a_mapping_file_loads_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "custom.toml"
    path.write_text('[tables.T]\nentity = "things"\nfields = { a = "A" }\n', encoding="utf-8")
    mapping = load_mapping(path)
    assert (mapping.name, mapping.source, list(mapping.tables)) == ("custom", str(path), ["T"])


def test_an_unknown_shipped_name_lists_the_shipped_ones() -> None:
    with pytest.raises(MappingError) as caught:
        load_mapping("sap-field-sales")
    assert str(caught.value) == (
        "no shipped mapping named 'sap-field-sales' (shipped: bc-field-sales, "
        "crmaas-field-sales, dataverse-field-sales, ipaas-contact)"
    )


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    assert str(caught.value) == f"{path}: cannot read mapping file: No such file or directory"


def test_invalid_toml_names_the_file() -> None:
    assert error_of("[tables.T\n").startswith("my.toml: not valid TOML: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[tables.T]\nentity = "x"\nfeilds = { a = "A" }\n',
            "my.toml: tables.T.feilds: Extra inputs are not permitted",
        ),
        (
            '[tables.T]\nentity = "x"\nfields = { a = { from = "A", convert = "money" } }\n',
            "my.toml: tables.T.fields.a.convert: Input should be 'string', 'int', 'decimal', "
            "'bool', 'date', 'datetime' or 'base64'",
        ),
        (
            '[tables.T]\nentity = "x"\nkey = ["number"]\nfields = { a = "A" }\n',
            "my.toml: tables.T: key field(s) ['number'] are not produced by any row",
        ),
        (
            '[tables.T]\nentity = "x"\nrequired = ["b"]\nfields = { a = "A" }\n',
            "my.toml: tables.T: required field(s) ['b'] are not produced by any row",
        ),
        (
            '[tables.T]\nentity = "x"\nfields = { a = "A" }\nstatic = { a = 1 }\n',
            "my.toml: tables.T: target field 'a' is set by both `fields` and `static`",
        ),
        (
            '[tables.T]\nfields = { a = "A" }\n',
            "my.toml: tables.T: a table needs an `entity` or `routes`",
        ),
        (
            'ignore_tables = ["T"]\n[tables.T]\nentity = "x"\n',
            "my.toml: table 'T' is both ignored and mapped",
        ),
        (
            '[tables.T]\nentity = "x"\n[tables.T.children.L]\ncollection = "l"\n'
            'parent_key = "No"\nchild_key = "DocumentNo"\n[tables.L]\nentity = "y"\n',
            "my.toml: table 'L' is both a table and a child of 'T'",
        ),
        (
            '[tables.T]\nentity = "x"\n[[tables.T.checks]]\nerror = "Bad"\n',
            "my.toml: tables.T.checks.0: a check needs `required = true`, a `pattern` or a `test`",
        ),
    ],
    ids=[
        "unknown-option",
        "unknown-conversion",
        "key-no-row-produces",
        "required-no-row-produces",
        "target-field-set-twice",
        "no-entity-or-routes",
        "ignored-and-mapped",
        "child-also-a-table",
        "check-without-a-rule",
    ],
)
def test_a_mapping_the_loader_refuses_is_named_by_file_table_and_key(
    text: str, message: str
) -> None:
    assert error_of(text) == message


def test_bad_jmespath_is_refused_on_load() -> None:
    message = error_of('[tables.T]\nentity = "x"\nwhen = "Type == "\n')
    assert message.startswith("my.toml: tables.T.when: invalid JMESPath expression 'Type == ': ")


def test_an_invalid_check_pattern_is_refused() -> None:
    message = error_of(
        '[tables.T]\nentity = "x"\nfields = { e = "E" }\n'
        '[[tables.T.checks]]\nfield = "e"\npattern = "(["\nerror = "Bad"\n'
    )
    assert message.startswith("my.toml: tables.T.checks.0.pattern: invalid regular expression '(['")
