#!/usr/bin/env bash
# Runs Starling's tests: `./test.sh` (extra arguments go to `cargo test`).
#
# Installs, once, what the tests need beyond Rust: Chromium and the
# playwright-core driver for the dashboard's browser test (Debian's
# `chromium` package and `npm ci` in web/browser), and moto's S3 server for
# the S3 artifact store's tests (pip). Set DATABASE_URL to run the
# store suites on PostgreSQL as well as SQLite: the tests that need it are
# marked ignored (cargo lists them as such), and run here with
# --include-ignored when DATABASE_URL names a server.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing Chromium for the browser test (Debian's chromium package)"
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; })
  else
    echo "the browser test needs /usr/bin/chromium: install Debian's chromium package (as root: apt-get install chromium)" >&2
    exit 1
  fi
fi
if [ ! -d web/browser/node_modules/playwright-core ]; then
  echo "== installing the browser driver (npm ci in web/browser)"
  npm ci --prefix web/browser --no-audit --no-fund --loglevel=error
fi

if ! python3 -c 'import moto.server' >/dev/null 2>&1; then
  echo "== installing moto's S3 server for the S3 artifact store's tests (pip)"
  python3 -m pip install --quiet --disable-pip-version-check 'moto[server]==5.2.1'
fi

if [ -z "${DATABASE_URL:-}" ]; then
  echo "== DATABASE_URL is not set: the PostgreSQL tests are listed as ignored and do not run"
  exec cargo test --workspace "$@"
fi
# Add --include-ignored after the caller's own test-binary arguments, if any.
for arg in "$@"; do
  if [ "$arg" = "--" ]; then
    exec cargo test --workspace "$@" --include-ignored
  fi
done
exec cargo test --workspace "$@" -- --include-ignored
