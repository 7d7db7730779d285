#!/usr/bin/env bash
# Makes sure the MariaDB the tests use answers on 127.0.0.1:3306 (machines of this kind start it
# before a session; this restarts it when it has stopped, and installs it on a bare machine).
set -euo pipefail

answering() { mysqladmin --protocol=tcp -h127.0.0.1 -P3306 -uroot ping >/dev/null 2>&1; }

if answering; then exit 0; fi
if [ ! -x /usr/sbin/mariadbd ]; then
  echo "mariadb.sh: installing mariadb-server" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends mariadb-server mariadb-client >/dev/null
fi
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
for _ in $(seq 1 60); do
  if answering; then exit 0; fi
  sleep 0.5
done
echo "mariadb.sh: MariaDB did not answer on 127.0.0.1:3306 within 30 s" >&2
exit 1
