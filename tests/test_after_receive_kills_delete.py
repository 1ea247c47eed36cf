"""``after_receive="delete"``: a kill at each step of the hand-over and the delete
loses and repeats nothing (how: tests/after_receive_kills.py)."""

from __future__ import annotations

import pytest

from devtools.certs import Certificate
from devtools.connections import ConnFactory
from devtools.dovecot import Dovecot
from tests.after_receive_kills import POINTS, kill_then_rerun


@pytest.mark.parametrize("point", POINTS["delete"])
def test_a_kill_at_any_step_loses_and_repeats_nothing(
    airflow_db: object,
    mail_connection: ConnFactory,
    vendor_inbox: Dovecot,
    certificate: Certificate,
    point: str,
) -> None:
    kill_then_rerun(mail_connection, vendor_inbox, certificate, "delete", point)
