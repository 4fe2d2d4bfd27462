#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, test and run carte.
# Idempotent: installs only missing packages, so a second run is quick.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages carte needs at run time or in its tests:
#   runc (the OCI runtime), conmon (the per-instance monitor), the CNI
#   reference plugins (bridge, host-local, loopback in /usr/lib/cni), iproute2
#   (ip netns), iptables (the host's firewall for carte's bridges and the gateway
#   namespace's, nf_tables; it brings ebtables-nft, the anti-spoofing rules),
#   busybox-static (small images for tests and examples), git,
#   wrk (the gateway benchmark), redis-server (the metaverse demo's database
#   image is built from its binary; the host service itself is not started),
#   gcc and libc6-dev (the root tests compile a small static program that
#   makes syscalls the seccomp profile must refuse), chromium (the dashboard's
#   browser test drives it headless through puppeteer-core), skopeo (carte
#   pull/push speak the OCI distribution protocol through it; tests check that
#   what carte exports loads elsewhere), docker-registry (a real registry the
#   registry tests run on 127.0.0.1; its service is not started), attr
#   (setfattr/getfattr: overlayfs opaque folders in OCI layers) and zstd
#   (zstd-compressed OCI layers; Node 20 has no zstd).
packages=(runc conmon containernetworking-plugins iproute2 iptables busybox-static git wrk redis-server gcc libc6-dev chromium skopeo docker-registry attr zstd)

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "error: carte needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing Debian packages: ${missing[*]} (run this script as root, or install them)" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  apt-get update -qq
  # Packages with services (redis-server) must not start them on the host:
  # carte runs Redis in a container. policy-rc.d exit 101 = "do not start".
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || { if [ "$own_policy" -eq 1 ]; then rm -f "$policy"; fi; exit 1; }
  if [ "$own_policy" -eq 1 ]; then rm -f "$policy"; fi
fi

# Put carte on PATH (a link to this checkout's launcher), unless another carte is there.
link=/usr/local/bin/carte
if [ "$(id -u)" -eq 0 ] && { [ ! -e "$link" ] || [ -L "$link" ]; }; then
  ln -sfn "$PWD/bin/carte" "$link"
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
