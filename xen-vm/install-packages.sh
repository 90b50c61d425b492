#!/bin/bash
# Install (idempotently) the Debian packages the real-Xen test harness needs.
# Prints what it installed; exits 3 with "XEN-VM UNAVAILABLE: <reason>" when apt cannot do it.
set -euo pipefail

PACKAGES=(
  qemu-system-x86            # qemu-system-x86_64 (TCG)
  xen-hypervisor-4.17-amd64  # /boot/xen-4.17-amd64.gz
  linux-image-amd64          # the Debian 6.1 kernel + modules, run as PV dom0
  busybox-static             # dom0 userland in the initramfs
  cpio                       # initramfs archives
  xz-utils                   # vmlinux extraction, .ko.xz modules
  kmod                       # modprobe --show-depends
  gzip
  libxen-dev                 # C probes / libxencall benchmarks
)

unavailable() {
  echo "XEN-VM UNAVAILABLE: $*" >&2
  exit 3
}

[ "$(id -u)" = 0 ] || unavailable "must run as root to install packages"
command -v dpkg >/dev/null 2>&1 || unavailable "not a Debian system (no dpkg)"

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "xen-vm: all packages already installed (${PACKAGES[*]})"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || unavailable "apt-get not found; missing packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
echo "xen-vm: installing missing packages: ${missing[*]}"
timeout 600 apt-get update -q >&2 || unavailable "apt-get update failed (exit $?); missing packages: ${missing[*]}"
timeout 1200 apt-get install -y -q --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${missing[@]}" >&2 \
  || unavailable "apt-get install failed (exit $?) for: ${missing[*]}"

# Verify; a xen-utils postinst may complain that the host is not a Xen dom0: harmless.
still=()
for p in "${missing[@]}"; do
  dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || still+=("$p")
done
[ "${#still[@]}" -eq 0 ] || unavailable "packages still not installed after apt-get: ${still[*]}"
echo "xen-vm: installed: ${missing[*]}"
