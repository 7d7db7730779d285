#!/usr/bin/env bash
# The whole test suite from a fresh machine of this kind: installs what is missing, starts the
# services the tests talk to (MariaDB, Redis, Keystone), then type-checks, lints and runs vitest.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -L node_modules ]; then
  # A git worktree sharing another checkout's install: `npm ci` here would empty that install
  # (it deletes through the symlink) under everyone using it. Update it where it lives.
  if [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "test.sh: node_modules is shared ($(readlink node_modules)); not reinstalling it from here" >&2
  fi
elif [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

bash scripts/mariadb.sh
bash scripts/redis.sh
# The API explorer test drives Debian's Chromium (playwright-core brings no browser of its own).
if [ ! -x /usr/bin/chromium ]; then
  echo "test.sh: installing chromium" >&2
  if ! (export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq &&
      apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium >/dev/null); then
    echo "test.sh: could not install chromium; the browser tests will be skipped" >&2
  fi
fi
if [ -f scripts/keystone.sh ]; then bash scripts/keystone.sh start; fi

npx tsc --noEmit
npx biome ci .

mkdir -p .state
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.state/vitest-report.json "$@" || status=$?
# A closing line any CI can read, whatever reporter vitest uses.
node -e '
  const r = JSON.parse(require("fs").readFileSync(".state/vitest-report.json", "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' || true
exit "$status"
