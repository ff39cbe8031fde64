#!/usr/bin/env bash
# Make rootful podman able to run containers on this host, detecting what it needs.
#
# Some hosts cannot use podman's defaults: crun fails with "cgroups in hybrid mode not supported"
# and the default ulimits fail without CAP_SYS_RESOURCE. A probe container (just /bin/true and
# its libraries, imported from the host: no registry needed) tells; only when it fails do we write
# /etc/containers/containers.conf (runc, ulimits the sandbox allows) and probe again.
set -euo pipefail

PROBE_IMAGE=localhost/localcloud-probe:latest
CONF=/etc/containers/containers.conf

if [[ $EUID -ne 0 ]]; then
  echo "setup-podman: skipped (instances and mounts need root podman; run as root)" >&2
  exit 0
fi

if ! podman image exists "$PROBE_IMAGE"; then
  true_bin=$(readlink -f /bin/true)
  libs=$(ldd "$true_bin" | awk '/=>/ {print $3} /ld-linux/ {print $1}')
  tar -chf - -C / "${true_bin#/}" $(for l in $libs; do echo "${l#/}"; done) 2>/dev/null \
    | podman import -q --change "CMD [\"$true_bin\"]" - "$PROBE_IMAGE" >/dev/null
fi

probe() { podman run --rm --network none "$PROBE_IMAGE" >/dev/null 2>&1; }

if probe; then
  exit 0
fi
echo "setup-podman: podman's defaults do not work here; configuring runc and ulimits in $CONF"
mkdir -p "$(dirname "$CONF")"
[[ -f $CONF && ! -f $CONF.orig ]] && cp "$CONF" "$CONF.orig"
cat > "$CONF" <<'CONF'
# Written by the project's scripts/setup-podman.sh: crun fails on this host (hybrid cgroups) and
# the default ulimits need CAP_SYS_RESOURCE. The original, if any, is in containers.conf.orig.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF
if ! probe; then
  echo "setup-podman: podman still cannot run a container; see: podman run --rm $PROBE_IMAGE" >&2
  exit 1
fi
echo "setup-podman: podman works with runc"
