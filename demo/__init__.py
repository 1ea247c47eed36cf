"""The one-command demo of airflow-provider-mail: ``make demo`` / ``python -m demo``.

It starts throw-away local mail servers (Dovecot, an SMTP server that delivers into it) and
a private Airflow, puts sample inquiries into info@example.com's inbox, runs the reference
integration ``obtain_info_emails_to_leads`` and shows what the leads received. ``--ui``
(``make demo-ui``) keeps the same set-up running behind ``airflow standalone``.
"""
