"""Pure logic of the provider: no sockets, no Airflow calls, tested without a server."""
