"""What the provider tells Airflow's secrets masker, and what it spares it.

Connection extras are read with :func:`connection_extra`, which masks only the extras
that hold secrets (see its docstring for why not ``extra_dejson``).

The choices of the connection forms stay out of Airflow's short-secret warning:

On every connection lookup Airflow hands each extra value to its secrets masker (through
``Connection.get_uri()`` and ``extra_dejson``). The masker checks a value's length before
it checks the value's name, so a setting such as ``security: ssl`` or ``claim_lock: host``
makes every task log warn "Skipping masking for a secret as it's too short (<5 chars)",
although a value of that name would never be masked. Airflow skips values listed in its
``SECRETS_TO_SKIP_MASKING`` silently; the short choices of this provider's dropdowns are
added there. Masking is unchanged: a value that short is never masked in any case, so
the only difference is that a password literally ``ssl``, ``none`` or ``host`` no longer
warns. See docs/logs.md.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from typing import Any

#: The extras of the provider's connection forms that hold secrets.
SECRET_EXTRAS = ("oauth2_client_secret", "oauth2_refresh_token")
#: Airflow's default ``[logging] min_length_masked_secret``: shorter values are never masked.
NEVER_MASKED_BELOW = 5
_MASKER_MODULES = (
    "airflow.sdk._shared.secrets_masker.secrets_masker",  # tasks and triggers
    "airflow._shared.secrets_masker.secrets_masker",  # api-server, scheduler, CLI
)


def short_choices() -> set[str]:
    """The dropdown values of every connection form that are too short to ever be masked."""
    from airflow_provider_mail.get_provider_info import get_provider_info

    return {
        value.lower()
        for connection_type in get_provider_info()["connection-types"]
        for field in connection_type["conn-fields"].values()
        for value in _choices(field)
        if len(value) < NEVER_MASKED_BELOW
    }


def _choices(field: dict[str, object]) -> Iterator[str]:
    schema = field.get("schema")
    if isinstance(schema, dict):
        for value in [*(schema.get("enum") or []), schema.get("default")]:
            if isinstance(value, str) and value:
                yield value


def register_short_choices() -> None:
    """Tell every secrets masker this Airflow has that the forms' short choices are no secrets."""
    choices = short_choices()
    for name in _MASKER_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue  # Airflow versions differ in where the masker lives
        skipped = getattr(module, "SECRETS_TO_SKIP_MASKING", None)
        if isinstance(skipped, set):
            skipped.update(choices)


def mask(value: str) -> None:
    """Have Airflow's secrets masker hide ``value`` in every log line of this process."""
    for module in ("airflow.sdk.log", "airflow.sdk.execution_time.secrets_masker"):
        try:
            mask_secret = importlib.import_module(module).mask_secret
        except (ImportError, AttributeError):
            continue  # not this Airflow version's home of mask_secret
        mask_secret(value)
        return


def connection_extra(connection: Any) -> dict[str, Any]:
    """A connection's extras as a dict; the secret ones (:data:`SECRET_EXTRAS`) are masked.

    Not ``Connection.extra_dejson``: that hands the whole dict to the secrets masker, which
    in Airflow 3.3's triggerer is a blocking round trip from the hook's thread to the
    triggerer's supervisor for every new session, seconds each while a thousand triggers
    open theirs (benchmarks/triggerer_scale.py). Airflow's connection lookup has already
    masked the password and the extras' text; of the provider's extras only the secret
    ones are masked again, one by one, so a password connection costs no round trip.
    Unreadable extras are an empty dict, as with ``extra_dejson``.
    """
    raw = connection.extra
    try:
        extra = raw if isinstance(raw, dict) else json.loads(raw or "{}")
    except ValueError:
        return {}
    if not isinstance(extra, dict):
        return {}
    for name in SECRET_EXTRAS:
        value = extra.get(name)
        if isinstance(value, str) and value:
            mask(value)
    return dict(extra)
