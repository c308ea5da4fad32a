#!/usr/bin/env bash
# Install a software Vulkan driver (Mesa lavapipe) so Dawn finds a WebGPU adapter on a machine without a GPU.
# Debian 12's own Mesa 22 is too old for Dawn; Mesa 25 from bookworm-backports works. Needs root (or sudo).
# Usage: bash scripts/install-vulkan.sh [--with-chromium]   (Chromium is only needed for the browser tests)
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
# Any Vulkan driver already present (a real GPU's, or lavapipe) is enough for the demo.
if [ "${1:-}" != "--with-chromium" ] && { [ -n "${VK_ICD_FILENAMES:-}" ] || ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1; }; then
  echo "a Vulkan driver is already installed"; exit 0
fi
export DEBIAN_FRONTEND=noninteractive
. /etc/os-release
pkgs=()
if [ "${VERSION_CODENAME:-}" = "bookworm" ]; then
  echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
else
  $SUDO apt-get update -qq
  pkgs+=(mesa-vulkan-drivers)
fi
[ "${1:-}" = "--with-chromium" ] && pkgs+=(chromium)
[ ${#pkgs[@]} -gt 0 ] && $SUDO apt-get install -y -qq "${pkgs[@]}" >/dev/null
ls /usr/share/vulkan/icd.d/lvp_icd.json >/dev/null && echo "lavapipe installed"
