"""Email integrations for Apache Airflow 3: receive over IMAP/POP3, map, send over SMTP."""

from __future__ import annotations

__version__ = "0.1.0"
