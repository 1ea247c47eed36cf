"""``python -m demo [--keep] [--ui [--port PORT]]`` and ``python -m demo send SUBJECT [TEXT]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The demo uses the checkout's development servers (devtools/): make the checkout
# importable however the demo was started.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["send"]:
        return send(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description="Run the reference email integration on local, throw-away servers.",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, mail)")
    parser.add_argument(
        "--ui", action="store_true", help="start the Airflow UI instead (until Ctrl-C)"
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="UI port (--ui; a free one if taken)"
    )
    args = parser.parse_args(argv)

    from demo.session import DemoError, DemoSession, say

    try:
        with DemoSession(keep=args.keep) as session:
            if args.ui:
                from demo.ui import run_ui

                run_ui(session, args.port)
            else:
                from demo.run import run

                run(session)
    except KeyboardInterrupt:
        if args.ui:
            # Ctrl-C is how the UI demo is meant to end.
            say("\nStopped Airflow and the mail servers.")
            return 0
        say("\nInterrupted: everything the demo started has been stopped.")
        return 130
    except DemoError as err:
        say(f"\nThe demo failed: {err}")
        return 1
    return 0


def send(argv: list[str]) -> int:
    """``python -m demo send SUBJECT [TEXT] [--from ADDRESS] [--to USER]``."""
    parser = argparse.ArgumentParser(
        prog="python -m demo send",
        description="Send one more email into the inbox of the running make demo-ui.",
    )
    parser.add_argument("subject")
    parser.add_argument("text", nargs="?", default="")
    parser.add_argument("--from", dest="sender", help="default: Sam Sender <sam@example.org>")
    parser.add_argument("--to", default="info", help="mailbox user (info, leads, support)")
    args = parser.parse_args(argv)

    from demo.feed import send as send_email
    from demo.session import DemoError, say

    try:
        say(send_email(args.subject, args.text, args.sender, args.to))
    except DemoError as err:
        say(f"Not sent: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
