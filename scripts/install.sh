#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian 12/13 machine (run as root): the OS tools Loom and its
# tests use, then the npm dependencies and the build. Safe to run again: installs only what is
# missing, and `npm ci` + `npm run build` are repeatable.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(nftables iproute2 iputils-ping bind9-dnsutils iperf3 tcpdump procps util-linux
  # peers the data-plane benchmark (npm run bench) measures Loom against
  tinc nebula wireguard-go wireguard-tools
  # what the DNS benchmark measures Loom against
  dnsperf dnsmasq-base
  # the HTTP load generator of the IPAM API benchmark
  wrk
  # the container runtimes Loom plugs into (issue 11): Docker, Podman (CNI backend), containerd's
  # CRI plugin, runc, and the reference CNI plugins (portmap, bandwidth, bridge, host-local)
  docker.io podman containerd runc containernetworking-plugins
  # the static busybox the runtime tests build their images (and the CRI sandbox image) from
  busybox-static
  # the C compiler and static libc for the native executables (native/loom.c: bin/loom; native/loom-cni.c; npm run build)
  gcc libc6-dev
  # the headless browser the live page's test drives with playwright-core (test/e2e/ui.test.ts)
  chromium)

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (it installs OS packages and the tests create network namespaces)" >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  # dpkg -s also lists removed-but-configured packages; require the "install ok installed" state.
  if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install.sh: OS packages already present"
fi

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then
  echo "install.sh: Node >= 20 is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm ci reinstalls node_modules from the lock file; skip it when the lock is not newer than the
# last successful install (npm writes node_modules/.package-lock.json).
if [ -f node_modules/.package-lock.json ] && ! [ package-lock.json -nt node_modules/.package-lock.json ] && [ "${LOOM_FORCE_NPM_CI:-0}" != 1 ]; then
  echo "install.sh: node_modules up to date"
else
  npm ci --no-audit --no-fund
fi
npm run build

# promtool (the metrics linter of test/unit/api/promtool.test.ts), extracted from Debian's
# prometheus package into .tools/bin without installing the service.
scripts/install-promtool.sh
