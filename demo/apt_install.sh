#!/bin/sh
# apt-get install the Debian packages given, as root, without letting their post-install
# scripts start system-wide servers (Dovecot, PostgreSQL, Redis) on public ports: the demo
# and the tests start their own, on 127.0.0.1 only. Usage: sh demo/apt_install.sh PACKAGE...
set -eu
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "$@" >/dev/null
