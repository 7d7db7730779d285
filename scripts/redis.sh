#!/usr/bin/env bash
# Makes sure the Redis the rate limit tests use answers on 127.0.0.1:6379 (machines of this kind
# start it before a session; this restarts it when it has stopped, and installs it on a bare machine).
set -euo pipefail

answering() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if command -v redis-cli >/dev/null && answering; then exit 0; fi
if [ ! -x /usr/bin/redis-server ]; then
  echo "redis.sh: installing redis-server" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends redis-server >/dev/null
fi
# Counters only: nothing to persist.
redis-server --bind 127.0.0.1 --port 6379 --save "" --appendonly no --daemonize yes >/dev/null
for _ in $(seq 1 60); do
  if answering; then exit 0; fi
  sleep 0.5
done
echo "redis.sh: Redis did not answer on 127.0.0.1:6379 within 30 s" >&2
exit 1
