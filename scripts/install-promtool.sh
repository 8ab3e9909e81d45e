#!/usr/bin/env bash
# Puts Prometheus's `promtool` (the metrics linter the tests run: `promtool check metrics`) in
# .tools/bin without installing the Prometheus service: downloads Debian's prometheus .deb and
# extracts only that one binary. Idempotent: does nothing when .tools/bin/promtool already runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dest=.tools/bin/promtool
if [ -x "$dest" ] && "$dest" --version >/dev/null 2>&1; then
  echo "install-promtool.sh: $dest present"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# _apt cannot write into a root-only mktemp dir; the download then runs unsandboxed (a warning).
# Package lists may be missing or stale on a machine whose packages were all present: update once.
if ! (cd "$tmp" && apt-get download -q prometheus); then
  apt-get update -q
  (cd "$tmp" && apt-get download -q prometheus)
fi
deb="$(ls "$tmp"/prometheus_*.deb)"
dpkg-deb -x "$deb" "$tmp/root"
mkdir -p .tools/bin
install -m 0755 "$tmp/root/usr/bin/promtool" "$dest.part"
mv "$dest.part" "$dest"
echo "install-promtool.sh: $("$dest" --version 2>&1 | head -n 1) -> $dest"
