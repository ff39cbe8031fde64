#!/usr/bin/env bash
# Install the Debian packages the project needs, once: podman with runc (crun does not work on
# hosts with hybrid cgroups), debootstrap for localcloud's base image, s3fs/fuse3 for bucket mounts,
# iptables for the DNAT rule that sends 100.100.100.200 to the metadata service of localcloud instances.
set -euo pipefail

PACKAGES=(podman runc debootstrap s3fs fuse3 python3-venv iproute2 iptables)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $EUID -ne 0 ]]; then
    echo "install-system: missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "install-system: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
