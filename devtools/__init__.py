"""Development tools: the real servers and helpers that tests, ``demo/`` and ``benchmarks/`` share.

Dovecot, aiosmtpd, an OAuth token endpoint and a throw-away ``airflow api-server``, each
started on 127.0.0.1 and stopped by the object that started it; throw-away certificates;
connections defined through ``AIRFLOW_CONN_*`` variables; numbered sample messages.
Part of the checkout, not of the wheel: the provider never imports it.
"""
