"""The data mapper (pure: templates over plain data, no Airflow run)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mail.exceptions import MailConfigError
from airflow_provider_mail.operators.map import MapOperator, apply_mapping

RECORDS: list[dict[str, Any]] = [
    {
        "from": "Jane Doe <jane@example.org>",
        "to": "info@example.com",
        "cc": "Bob <bob@example.org>, carol@example.org",
        "subject": "Pricing?",
        "text": "How much is it?",
    },
    {
        "from": "mike@example.net",
        "to": "info@example.com",
        "cc": "",
        "subject": "Demo",
        "text": "Can I see a demo?",
    },
]

MAPPING = {
    "to": "leads@example.com",
    "reply_to": '{{ item["from"] }}',
    "subject": "New lead: {{ subject }}",
    "text": '{{ item["from"] | name or item["from"] | address }} wrote: {{ text }}',
    "cc": "{{ cc | addresses }}",
}


def test_list_in_list_out_with_exactly_the_mapping_keys() -> None:
    result = apply_mapping(RECORDS, MAPPING)
    assert result == [
        {
            "to": "leads@example.com",
            "reply_to": "Jane Doe <jane@example.org>",
            "subject": "New lead: Pricing?",
            "text": "Jane Doe wrote: How much is it?",
            "cc": "bob@example.org, carol@example.org",
        },
        {
            "to": "leads@example.com",
            "reply_to": "mike@example.net",
            "subject": "New lead: Demo",
            "text": "mike@example.net wrote: Can I see a demo?",
            "cc": "",
        },
    ]


def test_dict_in_dict_out() -> None:
    assert apply_mapping(RECORDS[0], {"who": '{{ item["from"] | address }}'}) == {
        "who": "jane@example.org"
    }


def test_empty_list_gives_empty_list() -> None:
    assert apply_mapping([], MAPPING) == []


def test_filters_in_loops_and_first() -> None:
    mapping = {
        "first": "{{ (cc | addresses) | first }}",
        "loop": "{% for a in cc | addresses %}[{{ a }}]{% endfor %}",
    }
    assert apply_mapping(RECORDS[0], mapping) == {
        "first": "bob@example.org",
        "loop": "[bob@example.org][carol@example.org]",
    }


def test_no_autoescape() -> None:
    assert apply_mapping({"s": "<b>&</b>"}, {"x": "{{ s }}"}) == {"x": "<b>&</b>"}


def test_data_is_not_rendered_twice() -> None:
    assert apply_mapping({"subject": "{{ 7 * 7 }}"}, {"s": "{{ subject }}"}) == {"s": "{{ 7 * 7 }}"}


def test_undefined_variable_names_field_template_item_and_keys() -> None:
    with pytest.raises(MailConfigError) as info:
        apply_mapping(RECORDS, {"subject": "Re: {{ subjekt }}"})
    message = str(info.value)
    assert "'subject'" in message
    assert "Re: {{ subjekt }}" in message
    assert "source item 0" in message
    assert "subjekt" in message
    assert "available keys: cc, from, subject, text, to" in message


def test_missing_key_of_item_is_an_error_too() -> None:
    with pytest.raises(MailConfigError, match="available keys"):
        apply_mapping(RECORDS, {"x": '{{ item["reply_to"] }}'})


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ item.__class__ }}",
        "{{ subject.__class__.__base__.__subclasses__() }}",
        "{{ item.update({'x': 1}) }}",
    ],
)
def test_sandbox_refuses_internals_and_mutation(template: str) -> None:
    with pytest.raises(MailConfigError, match="sandbox forbids"):
        apply_mapping(RECORDS, {"x": template})


def test_syntax_error_is_found_when_the_task_is_built() -> None:
    with pytest.raises(MailConfigError, match=r"mapping for 'subject' is not a valid template"):
        MapOperator(task_id="map", source=RECORDS, mapping={"subject": "{{ subject "})


@pytest.mark.parametrize("mapping", [{}, {"to": 5}, "to"])
def test_bad_mapping_is_refused_when_the_task_is_built(mapping: Any) -> None:
    with pytest.raises(MailConfigError, match="mapping"):
        MapOperator(task_id="map", source=RECORDS, mapping=mapping)


@pytest.mark.parametrize("source", ["text", 5, None, ["not a dict"]])
def test_source_must_be_dicts(source: Any) -> None:
    with pytest.raises(MailConfigError, match="dict"):
        apply_mapping(source, MAPPING)


def test_item_key_named_item_does_not_hide_the_whole_item() -> None:
    assert apply_mapping({"item": "x", "a": "1"}, {"v": '{{ item["a"] }}'}) == {"v": "1"}


def test_mapping_is_not_an_airflow_template_field_but_source_is() -> None:
    assert "mapping" not in MapOperator.template_fields
    assert "source" in MapOperator.template_fields


def test_execute_returns_the_mapped_items() -> None:
    operator = MapOperator(task_id="map", source=RECORDS, mapping={"s": "{{ subject }}"})
    assert operator.execute({}) == [{"s": "Pricing?"}, {"s": "Demo"}]  # type: ignore[arg-type]
