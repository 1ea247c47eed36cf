"""Which hook receives mail for a connection type (``mail_imap``, ``mail_pop3``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_mail.exceptions import MailConfigError

# The hooks are imported when first asked for, not when a DAG file that uses the sensor
# or the trigger is parsed: every DAG-processor process imports those modules.
if TYPE_CHECKING:
    from airflow_provider_mail.hooks.base import ReceiveHook

#: The hook class per connection type, completed on first use.
RECEIVE_HOOKS: dict[str, type[ReceiveHook[Any]]] = {}


def receive_hook(conn_id: str, connection: Any, folder: str | None) -> ReceiveHook[Any]:
    """The hook for a loaded receive connection, checked against ``folder``.

    Any other connection type, or a folder the protocol cannot read, is a clear error.
    """
    from airflow_provider_mail.hooks.imap import ImapHook
    from airflow_provider_mail.hooks.pop3 import Pop3Hook

    for known in (ImapHook, Pop3Hook):
        RECEIVE_HOOKS.setdefault(known.conn_type, known)
    try:
        hook_class = RECEIVE_HOOKS[connection.conn_type or ""]
    except KeyError:
        raise MailConfigError(
            f"Connection {conn_id!r} is of type {connection.conn_type!r}; receiving email needs a "
            "mail_imap or mail_pop3 connection."
        ) from None
    hook = hook_class(conn_id, connection=connection)
    hook.check_folder(folder)
    return hook
