"""A mapping template that builds a huge string: refused with a sentence, memory spared.

Pure: no Airflow run needed. Each template below would build about a gigabyte in one
step (or, for the loops, in many small ones) without the limits.
"""

from __future__ import annotations

import tracemalloc

import pytest

from airflow_provider_mail.exceptions import MailConfigError
from airflow_provider_mail.operators.map import MAX_RENDERED_CHARS, apply_mapping

HUGE = [
    "{{ a * 10**9 }}",
    "{{ 10**9 * a }}",
    "{{ [a] * 10**9 }}",
    "{{ a | center(10**9) }}",
    "{{ a.center(10**9) }}",
    "{{ a.ljust(10**9) }}",
    '{{ "%*s" | format(10**9, a) }}',
    "{{ a | indent(10**9) }}",
    "{{ (a * 1000000) * 20 }}",
    "{% for i in range(100000) %}{{ a * 1000 }}{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{{ a }}{% endfor %}{% endfor %}",
]


@pytest.mark.parametrize("template", HUGE)
def test_huge_values_are_refused_without_building_them(template: str) -> None:
    if "range(100000) %}{% for" in template:
        # Tracing every small piece of this one makes it minutes slow; the error is the point.
        with pytest.raises(MailConfigError, match=r"would grow beyond \d+ characters in"):
            apply_mapping([{"a": "x" * 100}], {"text": template})
        return
    tracemalloc.start()
    try:
        with pytest.raises(MailConfigError, match=r"would grow beyond \d+ characters in"):
            apply_mapping([{"a": "x"}], {"text": template})
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_RENDERED_CHARS + 16 * 1024 * 1024


def test_large_but_reasonable_values_still_render() -> None:
    body = "line of a long email\n" * 100_000  # 2 MB: a big message text mapped as it is
    [result] = apply_mapping(
        [{"text": body}], {"text": "Forwarded:\n{{ text }}", "x": "{{ 2 ** 64 }}"}
    )
    assert result["text"].rstrip("\n") == "Forwarded:\n" + body.rstrip("\n")
    assert result["x"] == str(2**64)
