"""MapOperator: the data mapper step between "Receive Email" and "Send Email"."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from airflow_provider_mail.exceptions import MailConfigError
from airflow_provider_mail.mail import params
from airflow_provider_mail.mail.addresses import address_filter, addresses_filter, name_filter

if TYPE_CHECKING:
    from airflow.sdk import Context

_MAX_QUOTED = 200

#: Most characters one rendered value may have (10 Mi): room for the text of a large
#: email, far below what would exhaust a worker's memory.
MAX_RENDERED_CHARS = 10 * 1024 * 1024

_SEQUENCES = (str, bytes, list, tuple)


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus limits on what one expression may build.

    The sandbox keeps templates away from Python internals but lets ``{{ a * 10**9 }}`` or
    ``{{ "x" | center(10**9) }}`` build a gigabyte string in one step, before any limit on
    the output could see it. Repetition (``*``), powers (``**``) and integer arguments of
    calls and filters are checked before they run.
    """

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if (
                    isinstance(sequence, _SEQUENCES)
                    and isinstance(count, int)
                    and len(sequence) * count > MAX_RENDERED_CHARS
                ):
                    raise SecurityError("a repetition would exceed the size limit")
        if (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and right * abs(left).bit_length() > MAX_RENDERED_CHARS
        ):
            raise SecurityError("a power would exceed the size limit")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_sizes((*args, *kwargs.values()))
        return super().call(__context, __obj, *args, **kwargs)


def _check_sizes(arguments: tuple[Any, ...]) -> None:
    if any(
        isinstance(argument, int) and abs(argument) > MAX_RENDERED_CHARS for argument in arguments
    ):
        raise SecurityError("a number argument exceeds the size limit")


def _bounded_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` refusing integer arguments beyond the size limit (``center(10**9)``)."""
    # Filters that take the context or environment get it before the value.
    skip = 2 if hasattr(function, "jinja_pass_arg") else 1

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _check_sizes((*args[skip:], *kwargs.values()))
        return function(*args, **kwargs)

    return bounded


def mapping_environment() -> ImmutableSandboxedEnvironment:
    """The Jinja2 environment mapping templates run in.

    Sandboxed (the data comes from strangers' emails, so templates may read it but never
    reach Python internals or change it), strict about undefined names, no autoescaping
    (the output is email fields, not HTML), with the filters ``address``, ``name`` and
    ``addresses``. One rendered value may have at most :data:`MAX_RENDERED_CHARS`
    characters, and no single expression may build more.
    """
    env = _BoundedSandbox(undefined=StrictUndefined, autoescape=False)
    env.filters.update(
        {"address": address_filter, "name": name_filter, "addresses": addresses_filter}
    )
    env.filters = {name: _bounded_filter(function) for name, function in env.filters.items()}
    return env


class _TooLarge(Exception):
    """A rendered value grew beyond :data:`MAX_RENDERED_CHARS`."""


def _render_bounded(template: Template, variables: Mapping[str, Any]) -> str:
    """Render, stopping as soon as the output exceeds :data:`MAX_RENDERED_CHARS`."""
    pieces, size = [], 0
    for piece in template.generate(variables):
        size += len(piece)
        if size > MAX_RENDERED_CHARS:
            raise _TooLarge
        pieces.append(piece)
    return "".join(pieces)


def _quoted(text: str) -> str:
    return repr(text if len(text) <= _MAX_QUOTED else text[:_MAX_QUOTED] + "...")


def compile_mapping(mapping: Mapping[str, str]) -> dict[str, Template]:
    """Check and compile every template of ``mapping``; errors name the target field."""
    if not isinstance(mapping, Mapping) or not mapping:
        raise MailConfigError(
            "mapping must be a non-empty dict of target field -> template, such as "
            "{'to': '{{ item[\"from\"] | address }}'}."
        )
    env = mapping_environment()
    compiled: dict[str, Template] = {}
    for field, template in mapping.items():
        if not isinstance(field, str) or not isinstance(template, str):
            raise MailConfigError(
                f"mapping entry {field!r} must map a field name to a template string; "
                f"got {type(template).__name__}."
            )
        try:
            compiled[field] = env.from_string(template)
        except TemplateSyntaxError as err:
            raise MailConfigError(
                f"The mapping for {field!r} is not a valid template ({err.message}, line "
                f"{err.lineno}): {_quoted(template)}; fix its Jinja2 syntax."
            ) from None
    return compiled


def _render_item(
    item: object, index: int | None, templates: Mapping[str, Template], mapping: Mapping[str, str]
) -> dict[str, str]:
    where = "the source" if index is None else f"source item {index}"
    if not isinstance(item, Mapping):
        raise MailConfigError(
            f"{where.capitalize()} is a {type(item).__name__}, not a dict; the source must be a "
            "dict or a list of dicts."
        )
    variables = {str(key): value for key, value in item.items()}
    variables["item"] = item
    result: dict[str, str] = {}
    for field, template in templates.items():
        try:
            result[field] = _render_bounded(template, variables)
        except Exception as err:
            raise _render_error(err, field, mapping[field], where, item) from None
    return result


def _render_error(
    err: Exception, field: str, template: str, where: str, item: Mapping[object, object]
) -> MailConfigError:
    """The sentence for a template that failed on one item (built only when one does)."""
    source = _quoted(template)
    keys = ", ".join(sorted(str(key) for key in item)) or "none"
    if isinstance(err, _TooLarge) or (isinstance(err, SecurityError) and "size limit" in str(err)):
        return MailConfigError(
            f"The mapping for {field!r} ({source}) would grow beyond {MAX_RENDERED_CHARS} "
            f"characters in {where}, the most one mapped value may have; make the template "
            "build less."
        )
    if isinstance(err, SecurityError):
        return MailConfigError(
            f"The mapping for {field!r} ({source}) tried to reach something the sandbox "
            "forbids in " + where + "; templates may only read the item's values and use "
            "filters."
        )
    if isinstance(err, UndefinedError):
        return MailConfigError(
            f"The mapping for {field!r} ({source}) uses something undefined in {where} "
            f"({err.message}); available keys: {keys}."
        )
    return MailConfigError(
        f"The mapping for {field!r} ({source}) failed on {where} with "
        f"{type(err).__name__}; check the template against that item's keys: {keys}."
    )


def apply_mapping(
    source: object, mapping: Mapping[str, str]
) -> dict[str, str] | list[dict[str, str]]:
    """Render ``mapping`` once per item of ``source``.

    A dict source gives a dict; a list of dicts gives a list of dicts, one per item, each
    with exactly the mapping's keys; an empty list gives an empty list.

    >>> apply_mapping([{"from": "Jane <j@example.com>"}], {"to": '{{ item["from"] | address }}'})
    [{'to': 'j@example.com'}]
    """
    templates = compile_mapping(mapping)
    if isinstance(source, Mapping):
        return _render_item(source, None, templates, mapping)
    if isinstance(source, (list, tuple)):
        return [_render_item(item, index, templates, mapping) for index, item in enumerate(source)]
    raise MailConfigError(
        f"The source is a {type(source).__name__}; give a dict or a list of dicts, usually the "
        "upstream task's output."
    )


class MapOperator(BaseOperator):
    """Map records (such as received emails) to new fields with Jinja2 templates.

    The data mapper step between "Receive Email" and "Send Email"::

        leads = MapOperator(
            task_id="map_to_leads",
            source=receive.output,
            mapping={
                "to": "leads@example.com",
                "subject": "New lead: {{ subject }}",
                "text": 'From {{ item["from"] | name }}: {{ text }}',
                "reply_to": '{{ item["from"] }}',
            },
        )

    The task returns (XCom) one dict per source item with exactly the mapping's keys.

    :param source: a dict or a list of dicts, usually the upstream task's output
        (``XComArg``) such as the records of a ``ReceiveEmailSensor``. A dict returns a
        dict, a list returns a list, an empty list returns an empty list.
    :param mapping: target field -> Jinja2 template, rendered once per source item. In a
        template every key of the item is a variable (``{{ subject }}``) and the whole item
        is ``item`` (``{{ item["from"] }}``, since ``from`` is a Python keyword). Filters for
        email: ``address`` (``Jane <j@x.org>`` -> ``j@x.org``), ``name`` (-> ``Jane``) and
        ``addresses`` (every bare address of a header). Rendering is sandboxed, and an
        undefined name fails the task with a message naming the field, the template and the
        item's keys. Airflow does not pre-render ``mapping`` (it is not a templated field),
        so ``{{ subject }}`` refers to the item, not to Airflow's context.
    """

    template_fields: Sequence[str] = ("source",)
    ui_color = "#e8f4fd"

    def __init__(self, *, source: Any, mapping: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        compile_mapping(mapping)
        self.source = params.check_records(source, "source", optional=False)
        self.mapping = dict(mapping)

    def execute(self, context: Context) -> dict[str, str] | list[dict[str, str]]:
        """Render the mapping over the resolved source."""
        result = apply_mapping(self.source, self.mapping)
        count = 1 if isinstance(result, dict) else len(result)
        self.log.info("Mapped %d item(s) to the fields %s.", count, ", ".join(self.mapping))
        return result
