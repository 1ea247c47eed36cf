"""`make demo` end to end: `python -m demo` as a user runs it, in a subprocess.

It starts its own Dovecot, SMTP server and Airflow home, so it shares nothing with the
rest of the suite; the package and Dovecot are installed in CI, as the demo's
bootstrap step would install them on a fresh machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LEAD_SUBJECTS = [
    "New lead: Preise für 2027",
    "New lead: Could we get a demo next week?",
    "New lead: Requirements for a quote",
    "New lead: Partnership / reseller program?",
]


def test_make_demo_runs_the_reference_integration_and_shows_what_the_leads_got() -> None:
    # The suite's own Airflow settings (conftest) must not leak into the demo: it brings
    # its own, as it would on a user's machine.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MAIL_TESTS"))}
    env["PYTHONIOENCODING"] = "utf-8"
    result = subprocess.run(
        [sys.executable, "-m", "demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for number in range(1, 6):
        assert f"[{number}/5]" in output
    summary = output.split("[5/5]", 1)[1]
    for subject in LEAD_SUBJECTS:
        assert f"Subject:  {subject}" in summary, output
    assert "Reply-To: Jürgen Müller <juergen.mueller@example.org>" in summary
    # The HTML-only inquiry reaches the leads as readable text.
    assert "would love a 30-minute demo" in summary
    assert "Demo finished in" in output
    # Airflow's own log lines stay in the log file, out of the console.
    assert "[info     ]" not in output and "[warning  ]" not in output
