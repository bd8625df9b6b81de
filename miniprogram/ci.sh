#!/usr/bin/env bash
# The member mini-program's CI: installs the locked npm packages, builds miniprogram_npm as
# DevTools' "构建 npm" would, runs the static checks (wcc, WXSS, usingComponents, package size)
# and the jest suites (request layer, pages and components, and the member journey against the
# real backend binary), then prints the counts.
#
#   MEMBERHUB_BIN=/path/to/memberhub bash miniprogram/ci.sh
#
# Needs node >= 18 and npm, and the npm registry.
set -euo pipefail
cd "$(dirname "$0")"

export MEMBERHUB_BIN="${MEMBERHUB_BIN:-/tmp/memberhub-journey}"
if [ ! -x "$MEMBERHUB_BIN" ]; then
  echo "miniprogram: the memberhub binary is missing at $MEMBERHUB_BIN (set MEMBERHUB_BIN)" >&2
  exit 1
fi
node -e 'if (+process.versions.node.split(".")[0] < 18) { console.error("miniprogram: node >= 18 is required, found " + process.version); process.exit(1) }'

echo "== miniprogram: npm ci"
npm ci --no-audit --no-fund --loglevel=error

echo "== miniprogram: build npm (miniprogram_npm)"
node scripts/build-npm.js

echo "== miniprogram: static checks"
node scripts/static-check.js

echo "== miniprogram: jest (unit, pages, journey against $MEMBERHUB_BIN)"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
status=0
npx --no-install jest --ci --maxWorkers=2 --json --outputFile="$results" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const suites = r.numTotalTestSuites, failedSuites = r.numFailedTestSuites;
  console.log(`miniprogram: ${suites} suites (${failedSuites} failed), ${r.numTotalTests} tests`);
  console.log(`miniprogram: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
' "$results" || true
exit "$status"
