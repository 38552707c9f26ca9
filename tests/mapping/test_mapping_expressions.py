"""The custom JMESPath functions mapping formulas rely on."""

from __future__ import annotations

import pytest

from packetworker.targets.mapping.expressions import compile_expression


def search(expression: str, data: dict[str, object] | None = None) -> object:
    return compile_expression(expression).search(data or {})


def test_custom_field_reads_a_name_value_list_in_json_text() -> None:
    props = '[{"Name": "Active_Web_User", "Value": "true"}, {"Name": "Other", "Value": "x"}]'
    assert search("custom_field(P, 'Active_Web_User')", {"P": props}) == "true"


def test_custom_field_reads_a_json_object() -> None:
    assert search("custom_field(P, 'Active_Web_User')", {"P": '{"Active_Web_User": "1"}'}) == "1"


def test_custom_field_of_absent_properties_is_null() -> None:
    assert search("custom_field(P, 'Active_Web_User')") is None


def test_concat_leaves_out_null_parts() -> None:
    assert search("concat('a', missing, 'b', `1`)") == "ab1"


def test_default_replaces_null_and_empty_text() -> None:
    assert [search("default(v, 'x')", {"v": v}) for v in (None, "", "y")] == ["x", "x", "y"]


def test_lower_upper_and_trim_pass_null_through() -> None:
    assert search("[lower(a), upper(a), trim(b), trim(c)]", {"a": "Ab", "b": " x "}) == [
        "ab",
        "AB",
        "x",
        None,
    ]


def test_choose_translates_a_code_with_a_fallback() -> None:
    expression = "choose(v, {\"101\": 'Visit start'}, 'Activity')"
    assert [search(expression, {"v": v}) for v in ("101", "7", None)] == [
        "Visit start",
        "Activity",
        "Activity",
    ]


def test_decimal_arithmetic_is_exact_text() -> None:
    assert search("[dec_add('0.1', '0.2'), dec_sub('100', '0.5'), dec_mul('3', '0.1')]") == [
        "0.3",
        "99.5",
        "0.3",
    ]


def test_dec_sum_adds_a_list_and_skips_nulls() -> None:
    assert search("dec_sum(xs)", {"xs": ["70.5", None, "29.5"]}) == "100"


def test_dec_neg_and_null_inputs() -> None:
    assert search("[dec_neg('5'), dec_neg(missing), dec_sub(missing, '1')]") == ["-5", None, None]


def test_a_non_number_in_decimal_arithmetic_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"expression 'dec_neg\(v\)' failed: not a number: 'x'"):
        search("dec_neg(v)", {"v": "x"})


def test_lookup_returns_a_marker_for_the_target() -> None:
    assert search("lookup(v, 'company', 'external_id')", {"v": "42"}) == {
        "$lookup": {"entity": "company", "match": "external_id", "value": "42"}
    }


def test_single_quotes_are_string_literals_as_in_the_seed_filter() -> None:
    expression = "Type == 'Person' && RecordType == 'Contact'"
    assert search(expression, {"Type": "Person", "RecordType": "Contact"}) is True
    assert search(expression, {"Type": "Company", "RecordType": "Contact"}) is False


def test_a_comparison_with_a_double_quoted_word_is_refused_with_advice() -> None:
    with pytest.raises(ValueError) as caught:
        compile_expression('Type == "Person" && RecordType == "Contact"')
    assert str(caught.value) == (
        'in \'Type == "Person" && RecordType == "Contact"\', "Person" is a field name in '
        "JMESPath; write the text 'Person' in single quotes to compare with it"
    )
