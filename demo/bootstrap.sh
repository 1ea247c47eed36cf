#!/bin/sh
# Install what `make demo` needs, only when it is missing, so a second run costs nothing.
# Usage: sh demo/bootstrap.sh [python]
set -eu
PYTHON="${1:-python}"
cd "$(dirname "$0")/.."

# The provider (editable, so the demo runs this checkout) plus aiosmtpd, which the local
# SMTP server of the demo needs (it is a test extra, not a runtime dependency).
if ! "$PYTHON" -c 'import airflow, airflow_provider_mail, aiosmtpd, imapclient' 2>/dev/null; then
  echo "Installing airflow-provider-mail (pip install -e .) and aiosmtpd..."
  "$PYTHON" -m pip install -q --disable-pip-version-check -e . 'aiosmtpd>=1.4'
fi

if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "Dovecot is missing: install dovecot-imapd and dovecot-pop3d (the demo needs root)." >&2
    exit 1
  fi
  echo "Installing Dovecot (apt-get install dovecot-imapd dovecot-pop3d)..."
  sh demo/apt_install.sh dovecot-imapd dovecot-pop3d
fi
