"""Loading mapping files: shipped names, paths, and errors that name file, table and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from packetworker.targets.mapping import (
    MappingConfigError,
    load_mapping,
    parse_mapping,
    shipped_mappings,
)


def error_of(text: str) -> str:
    with pytest.raises(MappingConfigError) as caught:
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
    with pytest.raises(MappingConfigError) as caught:
        load_mapping("sap-field-sales")
    assert str(caught.value) == (
        "no shipped mapping named 'sap-field-sales' (shipped: bc-field-sales, "
        "crmaas-field-sales, dataverse-field-sales, ipaas-contact)"
    )


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(MappingConfigError) as caught:
        load_mapping(path)
    assert str(caught.value) == f"{path}: cannot read mapping file: No such file or directory"


def test_invalid_toml_names_the_file() -> None:
    assert error_of("[tables.T\n").startswith("my.toml: not valid TOML: ")


def test_an_unknown_option_names_table_and_key() -> None:
    message = error_of('[tables.T]\nentity = "x"\nfeilds = { a = "A" }\n')
    assert message == "my.toml: tables.T.feilds: Extra inputs are not permitted"


def test_an_unknown_conversion_names_the_field() -> None:
    message = error_of(
        '[tables.T]\nentity = "x"\nfields = { a = { from = "A", convert = "money" } }\n'
    )
    assert message == (
        "my.toml: tables.T.fields.a.convert: Input should be 'string', 'int', 'decimal', "
        "'bool', 'date', 'datetime' or 'base64'"
    )


def test_bad_jmespath_is_refused_on_load() -> None:
    message = error_of('[tables.T]\nentity = "x"\nwhen = "Type == "\n')
    assert message.startswith("my.toml: tables.T.when: invalid JMESPath expression 'Type == ': ")


def test_a_key_no_row_produces_is_refused() -> None:
    message = error_of('[tables.T]\nentity = "x"\nkey = ["number"]\nfields = { a = "A" }\n')
    assert message == "my.toml: tables.T: key field(s) ['number'] are not produced by any row"


def test_a_required_field_no_row_produces_is_refused() -> None:
    message = error_of('[tables.T]\nentity = "x"\nrequired = ["b"]\nfields = { a = "A" }\n')
    assert message == "my.toml: tables.T: required field(s) ['b'] are not produced by any row"


def test_a_target_field_set_twice_is_refused() -> None:
    message = error_of('[tables.T]\nentity = "x"\nfields = { a = "A" }\nstatic = { a = 1 }\n')
    assert message == "my.toml: tables.T: target field 'a' is set by both `fields` and `static`"


def test_a_table_without_entity_or_routes_is_refused() -> None:
    assert error_of('[tables.T]\nfields = { a = "A" }\n') == (
        "my.toml: tables.T: a table needs an `entity` or `routes`"
    )


def test_a_table_both_ignored_and_mapped_is_refused() -> None:
    message = error_of('ignore_tables = ["T"]\n[tables.T]\nentity = "x"\n')
    assert message == "my.toml: table 'T' is both ignored and mapped"


def test_a_child_table_that_is_also_a_table_is_refused() -> None:
    message = error_of(
        '[tables.T]\nentity = "x"\n[tables.T.children.L]\ncollection = "l"\n'
        'parent_key = "No"\nchild_key = "DocumentNo"\n[tables.L]\nentity = "y"\n'
    )
    assert message == "my.toml: table 'L' is both a table and a child of 'T'"


def test_a_check_without_a_rule_is_refused() -> None:
    message = error_of('[tables.T]\nentity = "x"\n[[tables.T.checks]]\nerror = "Bad"\n')
    assert message == (
        "my.toml: tables.T.checks.0: a check needs `required = true`, a `pattern` or a `test`"
    )


def test_an_invalid_check_pattern_is_refused() -> None:
    message = error_of(
        '[tables.T]\nentity = "x"\nfields = { e = "E" }\n'
        '[[tables.T.checks]]\nfield = "e"\npattern = "(["\nerror = "Bad"\n'
    )
    assert message.startswith("my.toml: tables.T.checks.0.pattern: invalid regular expression '(['")
