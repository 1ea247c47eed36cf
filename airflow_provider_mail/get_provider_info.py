"""The provider metadata Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_mail import __version__

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "extra"],
    "relabeling": {
        "host": "Email Host Name",
        "port": "Email Server Port Number",
        "login": "User Name",
        "password": "Password",
    },
    "placeholders": {
        "host": "imap.example.com",
        "port": "empty: the usual port of the Security Method (under Extra Fields)",
        "login": "info@example.com",
    },
}

CONN_FIELDS: dict[str, Any] = {
    "security": {
        "label": "Security Method",
        "description": "ssl = TLS from the first byte, usual ports 993/995/465 "
        "(IMAP/POP3/SMTP); starttls = a plain connection upgraded to TLS, never falling back "
        "to plain text, usual ports 143/110/587 (SMTP submission, e.g. Microsoft 365 or "
        "Gmail: starttls on 587); none = no encryption, for local test servers only. With "
        "Email Server Port Number empty the usual port is used. Certificates are always "
        "verified. These fields are what the provider reads; Airflow's Extra Fields JSON "
        "box below only shows them as JSON.",
        "schema": {"type": "string", "enum": ["none", "starttls", "ssl"], "default": "ssl"},
    },
    "server_certificate": {
        "label": "Server Certificate",
        "description": "PEM text of a self-signed or private-CA certificate the server's "
        "certificate must chain to. Empty: the system trust store.",
        "schema": {"type": ["string", "null"], "format": "multiline"},
    },
    "timeout": {
        "label": "Timeout",
        "description": "Socket timeout in seconds for every network operation.",
        "schema": {"type": ["integer", "null"], "default": 30},
    },
}

#: IMAP only: how tasks reading one mailbox at once keep from taking the same email.
IMAP_CONN_FIELDS: dict[str, Any] = {
    **CONN_FIELDS,
    "claim_lock": {
        "label": "Claim Lock",
        "description": "Keeps tasks that read this mailbox at the same time from receiving "
        "the same email twice. host (default): enough while Airflow runs on one machine. "
        "server: when workers or triggerers run on several machines; each time mail is "
        "found, a folder AirflowMailClaimLock exists on the mail server for a moment.",
        "schema": {"type": "string", "enum": ["host", "server"], "default": "host"},
    },
}

#: Every type: how to sign in. The two secrets are ``format: password`` (a masked input in
#: the form) and have names Airflow's secrets masker hides in logs and the REST API
#: (``secret``, ``token``).
AUTH_CONN_FIELDS: dict[str, Any] = {
    "auth_type": {
        "label": "Authentication",
        "description": "password: User Name and Password. oauth2: OAuth 2.0 (SASL XOAUTH2) "
        "with an access token from the Token URL, for Microsoft 365 and Gmail; User Name is "
        "the mailbox address and Password stays empty.",
        "schema": {"type": "string", "enum": ["password", "oauth2"], "default": "password"},
    },
    "oauth2_token_url": {
        "label": "Token URL",
        "description": "oauth2: the token endpoint, e.g. "
        "https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token or "
        "https://oauth2.googleapis.com/token.",
        "schema": {"type": ["string", "null"]},
    },
    "oauth2_client_id": {
        "label": "Client ID",
        "description": "oauth2: the application (client) id of your app registration.",
        "schema": {"type": ["string", "null"]},
    },
    "oauth2_client_secret": {
        "label": "Client Secret",
        "description": "oauth2: the client secret's value (masked like a password).",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "oauth2_refresh_token": {
        "label": "Refresh Token",
        "description": "oauth2: a user's refresh token (refresh_token grant, e.g. Gmail). Empty: "
        "the client_credentials grant (Microsoft 365 app-only access).",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "oauth2_scope": {
        "label": "Scope",
        "description": "oauth2: space-separated scopes, e.g. "
        "https://outlook.office365.com/.default or https://mail.google.com/.",
        "schema": {"type": ["string", "null"]},
    },
}

_CONNECTION_TYPES = [
    ("mail_imap", "airflow_provider_mail.hooks.imap.ImapHook", "Receive Email (IMAP)"),
    ("mail_pop3", "airflow_provider_mail.hooks.pop3.Pop3Hook", "Receive Email (POP3)"),
    ("mail_smtp", "airflow_provider_mail.hooks.smtp.SmtpHook", "Send Email (SMTP)"),
]


def get_provider_info() -> dict[str, Any]:
    """Connection types, their forms, and the hooks, operators, sensors and triggers."""
    return {
        "package-name": "airflow-provider-mail",
        "name": "Mail",
        "description": "Email integrations: receive over IMAP/POP3, map with Jinja2, send over "
        "SMTP.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": conn_type,
                "hook-class-name": hook_class,
                "hook-name": hook_name,
                "conn-fields": {
                    **(IMAP_CONN_FIELDS if conn_type == "mail_imap" else CONN_FIELDS),
                    **AUTH_CONN_FIELDS,
                },
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
            for conn_type, hook_class, hook_name in _CONNECTION_TYPES
        ],
        "hooks": [
            {
                "integration-name": "Mail",
                "python-modules": [
                    "airflow_provider_mail.hooks.imap",
                    "airflow_provider_mail.hooks.pop3",
                    "airflow_provider_mail.hooks.smtp",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": "Mail",
                "python-modules": [
                    "airflow_provider_mail.operators.map",
                    "airflow_provider_mail.operators.send",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Mail",
                "python-modules": ["airflow_provider_mail.sensors.receive"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Mail",
                "python-modules": ["airflow_provider_mail.triggers.receive"],
            }
        ],
        "integrations": [
            {
                "integration-name": "Mail",
                "external-doc-url": "https://github.com/airflow-provider-mail/airflow-provider-mail",
                "tags": ["protocol"],
            }
        ],
    }


def _quiet_short_choices() -> None:
    # Airflow imports this module in every process that loads providers (api-server,
    # scheduler, triggerer); hooks/base.py does the same for tasks. See masking.py.
    from airflow_provider_mail.masking import register_short_choices

    register_short_choices()


_quiet_short_choices()
