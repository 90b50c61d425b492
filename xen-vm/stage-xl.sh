#!/bin/bash
# Stages Xen's own toolstack for the real-Xen harness (xen-vm/run.sh --with-xl) and prints the
# staged folder's path: the Debian packages of the installed hypervisor's exact version,
# downloaded with `apt-get download` and unpacked with `dpkg-deb -x` (never installed on the
# host), with the shared libraries `ldd` lists for xl and the daemons. Cached under
# $XENCALL_VM_WORK/cache/xl-<version>/ (default /tmp/xencall-xen-vm); running it again is cheap.
#
# Exit status 3 with "XEN-VM UNAVAILABLE: <reason>" when the packages cannot be had.
set -euo pipefail

WORK=${XENCALL_VM_WORK:-/tmp/xencall-xen-vm}
XEN_PKG=xen-hypervisor-4.17-amd64
XL_PACKAGES=(
  xen-utils-4.17 xen-utils-common xenstore-utils        # xl, xenstored, xenconsoled, xen-init-dom0
  libxenmisc4.17 libxenstore4 libxencall1 libxendevicemodel1 libxenevtchn1  # their Xen libraries,
  libxenforeignmemory1 libxengnttab1 libxenhypfs1 libxentoolcore1 libxentoollog1  # same version
)
XL_LIBEXEC=usr/lib/xen-4.17/bin
XL_BINARIES=(xl xenstored xenconsoled xen-init-dom0 libxl-save-helper xenstore-control)

unavailable() {
  echo "XEN-VM UNAVAILABLE: $*" >&2
  exit 3
}
log() { echo "xen-vm: $*" >&2; }

XEN_PKG_VERSION=$(dpkg-query -W -f='${Version}' "$XEN_PKG" 2>/dev/null || true)
[ -n "$XEN_PKG_VERSION" ] || unavailable "$XEN_PKG is not installed (xen-vm/install-packages.sh installs it)"
XL_DIR=$WORK/cache/xl-$XEN_PKG_VERSION
if [ -e "$XL_DIR/complete" ]; then
  echo "$XL_DIR"
  exit 0
fi

mkdir -p "$WORK/cache"
exec 8>"$WORK/xl.lock"
flock -w 600 8 || unavailable "timed out waiting for the lock $WORK/xl.lock"
if [ -e "$XL_DIR/complete" ]; then   # staged by another run while this one waited
  echo "$XL_DIR"
  exit 0
fi

log "staging Xen's toolstack $XEN_PKG_VERSION (apt-get download + dpkg-deb -x)"
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
  || unavailable "Xen's toolstack needs apt-get and dpkg-deb to be fetched"
tmp=$XL_DIR.tmp
rm -rf "$tmp"
mkdir -p "$tmp/debs" "$tmp/root" "$tmp/lib"
pinned=("${XL_PACKAGES[@]/%/=$XEN_PKG_VERSION}")
# The lists may be stale or absent on a fresh machine: one `apt-get update`, then try again.
if ! (cd "$tmp/debs" && timeout 300 apt-get download -q "${pinned[@]}") >"$tmp/apt.log" 2>&1; then
  timeout 600 apt-get update -q >>"$tmp/apt.log" 2>&1 || true
  (cd "$tmp/debs" && timeout 300 apt-get download -q "${pinned[@]}") >>"$tmp/apt.log" 2>&1 || {
    tail -n 5 "$tmp/apt.log" >&2
    unavailable "apt-get download of Xen's toolstack (${XL_PACKAGES[*]}) at version $XEN_PKG_VERSION failed (log above)"
  }
fi
for deb in "$tmp"/debs/*.deb; do
  timeout 60 dpkg-deb -x "$deb" "$tmp/root" || unavailable "dpkg-deb -x $deb failed"
done

# The Xen libraries resolve to the unpacked ones; anything else (libyajl, libz, glibc...) to the
# host's: dom0 runs the host's glibc through the node share already (run.sh).
xl_libdir=$tmp/root/usr/lib/x86_64-linux-gnu
for b in "${XL_BINARIES[@]}"; do
  bin=$tmp/root/$XL_LIBEXEC/$b
  [ -x "$bin" ] || unavailable "the toolstack packages have no $XL_LIBEXEC/$b"
  ldd_out=$(LD_LIBRARY_PATH=$xl_libdir timeout 30 ldd "$bin" 2>&1) || unavailable "ldd $bin failed: $ldd_out"
  missing=$(printf '%s\n' "$ldd_out" | awk '/not found/ { print $1 }' | tr '\n' ' ')
  [ -z "$missing" ] || unavailable "$b needs libraries this host lacks: $missing"
  while read -r line; do
    case $line in
      *"=> /"*) lib=${line#*=> }; lib=${lib%% (*} ;;
      *) continue ;;
    esac
    [ -e "$tmp/lib/$(basename "$lib")" ] || cp -L "$lib" "$tmp/lib/"
  done <<<"$ldd_out"
done
# glibc dlopens libgcc_s for thread cancellation; without it `xl save` aborts after writing the
# image (shared/xen-guest-notes.md).
gcc_s=$(ls /lib/x86_64-linux-gnu/libgcc_s.so.1 /usr/lib/x86_64-linux-gnu/libgcc_s.so.1 2>/dev/null | head -n1 || true)
[ -n "$gcc_s" ] || unavailable "libgcc_s.so.1 not found on the host (package libgcc-s1)"
cp -L "$gcc_s" "$tmp/lib/"

rm -rf "$tmp/debs" "$XL_DIR"
touch "$tmp/complete"
mv "$tmp" "$XL_DIR"
echo "$XL_DIR"
