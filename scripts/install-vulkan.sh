#!/usr/bin/env bash
# Install a software Vulkan driver (Mesa lavapipe) so Dawn finds a WebGPU adapter on a machine without a GPU.
# Debian 12's own Mesa 22 is too old for Dawn; Mesa 25 from bookworm-backports works.
# Usage: bash scripts/install-vulkan.sh [--with-chromium]   (Chromium is only needed for the browser tests)
#
# `npm run demo` calls this on every run, so the common case (a driver that works) must be quick and must
# never touch apt: it asks Dawn itself for an adapter when node_modules/webgpu is installed (an ICD file
# alone does not prove Dawn can use it: Mesa 22's lavapipe has one), else looks for any ICD file.
# Without root and without sudo it prints the exact commands to run and exits non-zero.
set -euo pipefail
shopt -s nullglob
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
with_chromium=0
[ "${1:-}" = "--with-chromium" ] && with_chromium=1

# 0: Dawn returned an adapter; 1: it did not; 2: cannot ask (no node or no webgpu package).
dawn_adapter() {
  command -v node >/dev/null 2>&1 && [ -d "$root/node_modules/webgpu" ] || return 2
  (cd "$root" && timeout 60 node --input-type=module -e \
    "const { create } = await import('webgpu'); const a = await create([]).requestAdapter(); process.exit(a ? 0 : 1);" \
    >/dev/null 2>&1) || return 1
}

icd_files() {
  local f files=(/usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json)
  # VK_ICD_FILENAMES (and the newer VK_DRIVER_FILES) list ICD files separated by ':'.
  local IFS=:
  for f in ${VK_ICD_FILENAMES:-} ${VK_DRIVER_FILES:-}; do [ -f "$f" ] && files+=("$f"); done
  [ ${#files[@]} -gt 0 ]
}

driver_ok=0
probe=0
dawn_adapter || probe=$?
if [ $probe = 0 ]; then
  echo "a Vulkan driver is already installed (Dawn found a WebGPU adapter)"; driver_ok=1
elif [ $probe = 2 ] && icd_files; then
  echo "a Vulkan driver is already installed (ICD file found)"; driver_ok=1
fi
chromium_ok=1
[ $with_chromium = 1 ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 && chromium_ok=0
[ $driver_ok = 1 ] && [ $chromium_ok = 1 ] && exit 0

# Plan the apt commands, then run them (root or sudo) or print them.
. /etc/os-release
cmds=()
pkgs=()
[ $with_chromium = 1 ] && [ $chromium_ok = 0 ] && pkgs+=(chromium)
if [ $driver_ok = 0 ] && [ "${VERSION_CODENAME:-}" = "bookworm" ]; then
  # Add the backports source only when no configured source names it (a second one makes apt warn).
  if ! grep -rqs --include='*.list' --include='*.sources' 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cmds+=("echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list")
  fi
  cmds+=("apt-get update -qq" "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers")
else
  [ $driver_ok = 0 ] && pkgs+=(mesa-vulkan-drivers)
  cmds+=("apt-get update -qq")
fi
[ ${#pkgs[@]} -gt 0 ] && cmds+=("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkgs[*]}")

if [ "$(id -u)" = 0 ]; then
  run=(bash -c)
elif command -v sudo >/dev/null 2>&1; then
  run=(sudo bash -c)
else
  what="a Vulkan driver that Dawn can use"
  [ $driver_ok = 1 ] && what="Chromium"
  echo "install-vulkan: $what is missing and installing it needs root (no sudo here). As root, run:" >&2
  printf '  %s\n' "${cmds[@]}" >&2
  echo "then run this again." >&2
  exit 1
fi
for c in "${cmds[@]}"; do "${run[@]}" "$c"; done
if [ $driver_ok = 0 ]; then
  if dawn_adapter || { [ $? = 2 ] && icd_files; }; then echo "Vulkan driver installed"; else
    echo "install-vulkan: installed mesa-vulkan-drivers but still no WebGPU adapter" >&2; exit 1
  fi
fi
