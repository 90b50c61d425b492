#!/bin/bash
# xencall real-Xen test harness.
#
# Boots the Debian Xen 4.17 hypervisor with the Debian kernel as PV dom0 under
# qemu-system-x86_64 (TCG), runs one command inside dom0 against the project
# (shared over virtio-9p at the same absolute path), prints the command's stdout
# and stderr and exits with its exit status.
#
#   xen-vm/run.sh [--timeout SECS] [--mem MB] [--vcpus N] [--no-hypercall-dev] [--with-xl]
#                 [--guest-log] [--env NAME=VALUE]... [--verbose] -- COMMAND [ARGS...]
#
# --with-xl also starts Xen's own toolstack in dom0 (xenstored, xen-init-dom0, xenconsoled; xl
# on PATH) before the command, from Debian packages downloaded into the cache. --guest-log (and
# --with-xl) give Xen guest_loglvl=all, so a guest's lines on port 0xe9 reach the serial log.
#
# Exit status: the command's; 124 if the VM timed out; 3 if the VM could not start
# (or died before reporting a result); 2 on a usage error.
# See xen-vm/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT_DIR=$(cd "$HERE/.." && pwd)
WORK=${XENCALL_VM_WORK:-/tmp/xencall-xen-vm}
XEN_PKG=xen-hypervisor-4.17-amd64
XEN_GZ=/boot/xen-4.17-amd64.gz

TIMEOUT=300
MEM=1024
VCPUS=2
NO_HYPERCALL_DEV=0
WITH_XL=0
GUEST_LOG=0
VERBOSE=0
EXTRA_ENV=()

usage() {
  sed -n "2,18p" "${BASH_SOURCE[0]}" | sed "s/^# \{0,1\}//" >&2
  exit "${1:-2}"
}
die_usage() { echo "xen-vm: $*" >&2; usage; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ]; }

while [ $# -gt 0 ]; do
  case $1 in
    --timeout) [ $# -ge 2 ] || die_usage "--timeout needs a value"; TIMEOUT=$2; shift 2 ;;
    --mem) [ $# -ge 2 ] || die_usage "--mem needs a value"; MEM=$2; shift 2 ;;
    --vcpus) [ $# -ge 2 ] || die_usage "--vcpus needs a value"; VCPUS=$2; shift 2 ;;
    --no-hypercall-dev) NO_HYPERCALL_DEV=1; shift ;;
    --with-xl) WITH_XL=1; shift ;;
    --guest-log) GUEST_LOG=1; shift ;;
    --env) [ $# -ge 2 ] || die_usage "--env needs NAME=VALUE"; EXTRA_ENV+=("$2"); shift 2 ;;
    --verbose) VERBOSE=1; shift ;;
    -h|--help) usage 0 ;;
    --) shift; break ;;
    *) die_usage "unknown option: $1 (the command goes after --)" ;;
  esac
done
[ $# -gt 0 ] || die_usage "no command given"
is_uint "$TIMEOUT" || die_usage "--timeout must be a positive integer"
is_uint "$MEM" || die_usage "--mem must be a positive integer (MB)"
is_uint "$VCPUS" || die_usage "--vcpus must be a positive integer"
[ "$MEM" -ge 256 ] || die_usage "--mem must be at least 256"
for kv in ${EXTRA_ENV[@]+"${EXTRA_ENV[@]}"}; do
  [[ $kv =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die_usage "--env wants NAME=VALUE, got: $kv"
done
case $WORK$PROJECT_DIR in
  *,*|*' '*) echo "XEN-VM UNAVAILABLE: work dir or project dir contains a comma or space" >&2; exit 3 ;;
esac

T0=$(date +%s.%N)
log() { echo "xen-vm: $*" >&2; }
unavailable() {
  echo "" >&2
  echo "XEN-VM UNAVAILABLE: $*" >&2
  exit 3
}
# Single-quote a string for /bin/sh.
shq() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }

# ---------------------------------------------------------------- packages
"$HERE/install-packages.sh" >&2 || {
  rc=$?
  [ "$rc" = 3 ] && exit 3
  unavailable "install-packages.sh failed with exit $rc"
}
[ -r "$XEN_GZ" ] || unavailable "$XEN_GZ missing"
NODE_BIN=$(command -v node || true)
[ -n "$NODE_BIN" ] || unavailable "no node on the host PATH"
NODE_BIN=$(readlink -f "$NODE_BIN")

# Newest Debian kernel that has its modules installed (override: XENCALL_VM_KVER).
KVER=${XENCALL_VM_KVER:-}
if [ -z "$KVER" ]; then
  for k in $(ls /boot/vmlinuz-*-amd64 2>/dev/null | sed 's|^/boot/vmlinuz-||' | sort -V -r); do
    if [ -d "/lib/modules/$k" ]; then KVER=$k; break; fi
  done
fi
[ -n "$KVER" ] && [ -r "/boot/vmlinuz-$KVER" ] && [ -d "/lib/modules/$KVER" ] \
  || unavailable "no /boot/vmlinuz-*-amd64 with matching /lib/modules found"

XEN_PKG_VERSION=$(dpkg-query -W -f='${Version}' "$XEN_PKG" 2>/dev/null || true)
XEN_VERSION=$(printf '%s' "$XEN_PKG_VERSION" | grep -oE '^[0-9]+\.[0-9]+(\.[0-9]+)?' || true)
[ -n "$XEN_VERSION" ] || unavailable "cannot read the version of $XEN_PKG"

mkdir -p "$WORK/cache" "$WORK/runs"
exec 9>"$WORK/cache.lock"
flock -w 600 9 || unavailable "timed out waiting for the cache lock $WORK/cache.lock"

# ---------------------------------------------------------------- cached boot images
CACHE=$WORK/cache/$KVER
mkdir -p "$CACHE"

is_elf() { [ -s "$1" ] && [ "$(head -c 4 "$1" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; }

# Xen: QEMU's multiboot loader wants the uncompressed ELF image.
XEN_ELF=$WORK/cache/xen-$XEN_PKG_VERSION.elf
if ! is_elf "$XEN_ELF" || [ "$XEN_GZ" -nt "$XEN_ELF" ]; then
  log "extracting $XEN_GZ"
  timeout 60 gzip -dc "$XEN_GZ" >"$XEN_ELF.tmp" || unavailable "cannot decompress $XEN_GZ"
  is_elf "$XEN_ELF.tmp" || unavailable "$XEN_GZ did not decompress to an ELF image"
  mv -f "$XEN_ELF.tmp" "$XEN_ELF"
fi

# dom0 kernel: the plain ELF vmlinux inside the bzImage, so that Xen does not have to
# decompress it under emulation. Look for each compressed-stream signature in the
# bzImage, decompress from there, keep the first result that is an ELF image.
extract_vmlinux() {
  local img=$1 out=$2 sig tool off
  for sig in 'xz:\xfd7zXZ\x00' 'gzip:\x1f\x8b\x08' 'zstd:\x28\xb5\x2f\xfd'; do
    tool=${sig%%:*}
    for off in $(LC_ALL=C grep -obUaP "${sig#*:}" "$img" 2>/dev/null | cut -d: -f1 | head -n 20); do
      case $tool in
        xz) tail -c +$((off + 1)) "$img" | timeout 120 xz -dc --single-stream >"$out" 2>/dev/null || true ;;
        gzip) tail -c +$((off + 1)) "$img" | timeout 120 gzip -dc >"$out" 2>/dev/null || true ;;
        zstd) command -v zstd >/dev/null || continue
              tail -c +$((off + 1)) "$img" | timeout 120 zstd -dc >"$out" 2>/dev/null || true ;;
      esac
      if is_elf "$out"; then return 0; fi
    done
  done
  rm -f "$out"
  return 1
}
VMLINUX=$CACHE/vmlinux
if ! is_elf "$VMLINUX" || [ "/boot/vmlinuz-$KVER" -nt "$VMLINUX" ]; then
  log "extracting vmlinux from /boot/vmlinuz-$KVER"
  extract_vmlinux "/boot/vmlinuz-$KVER" "$VMLINUX.tmp" \
    || unavailable "could not extract an ELF vmlinux from /boot/vmlinuz-$KVER"
  mv -f "$VMLINUX.tmp" "$VMLINUX"
fi

# Base initramfs: static busybox and the modules dom0 needs, in insmod order.
# (The per-run /init and job are a second archive appended to this one.)
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || unavailable "$BUSYBOX is missing (install busybox-static)"
MODULES=(xen-privcmd xenfs 9pnet_virtio 9p virtio_pci)
# Loaded only with --with-xl: xenstored and xenconsoled need event channels and grant mappings.
XL_MODULES=(xen-evtchn xen-gntdev xen-gntalloc)
BASE_CPIO=$CACHE/base.cpio.gz
BASE_KEY="$KVER $(stat -c '%s %Y' "$BUSYBOX") ${MODULES[*]} / ${XL_MODULES[*]} v2"
# stage_modules LIST MODULE...: copies the modules and their dependencies (decompressed) into
# the staging dir $st and writes their insmod order to LIST (a path in the initramfs); modules
# already in an earlier list ($seen) are not repeated.
stage_modules() {
  local list=$1 m deps verb path rel dst
  shift
  : >"$st$list"
  for m in "$@"; do
    deps=$(timeout 30 modprobe -S "$KVER" --show-depends "$m") \
      || unavailable "modprobe -S $KVER --show-depends $m failed"
    while read -r verb path _; do
      [ "$verb" = insmod ] || continue        # "builtin X" needs nothing
      case $seen in *" $path "*) continue ;; esac
      seen="$seen$path "
      rel=${path#/lib/modules/$KVER/}
      rel=${rel#/usr/lib/modules/$KVER/}
      dst=$st/lib/modules/$KVER/$rel
      mkdir -p "$(dirname "$dst")"
      case $path in
        *.ko.xz) dst=${dst%.xz}; timeout 30 xz -dc "$path" >"$dst" ;;
        *.ko.zst) dst=${dst%.zst}; timeout 30 zstd -dc "$path" >"$dst" ;;
        *.ko.gz) dst=${dst%.gz}; timeout 30 gzip -dc "$path" >"$dst" ;;
        *) cp "$path" "$dst" ;;
      esac
      echo "/${dst#"$st"/}" >>"$st$list"
    done <<<"$deps"
  done
}
if [ ! -s "$BASE_CPIO" ] || [ "$(cat "$CACHE/base.key" 2>/dev/null)" != "$BASE_KEY" ]; then
  log "building base initramfs for $KVER"
  st=$CACHE/base.d
  rm -rf "$st"
  mkdir -p "$st"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,proc,sys,dev,tmp,root,lib64,opt,run,"lib/modules/$KVER"}
  cp "$BUSYBOX" "$st/bin/busybox"
  mknod -m 600 "$st/dev/console" c 5 1
  mknod -m 666 "$st/dev/null" c 1 3
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$st/etc/passwd"
  printf 'root:x:0:\n' >"$st/etc/group"
  seen=" "
  stage_modules /etc/xencall-modules "${MODULES[@]}"
  stage_modules /etc/xencall-modules-xl "${XL_MODULES[@]}"
  [ -s "$st/etc/xencall-modules" ] || unavailable "no modules found for $KVER"
  (cd "$st" && find . | LC_ALL=C sort | timeout 60 cpio -o -H newc -R 0:0 --quiet) \
    | timeout 60 gzip -1 >"$BASE_CPIO.tmp" || unavailable "cpio/gzip of the base initramfs failed"
  mv -f "$BASE_CPIO.tmp" "$BASE_CPIO"
  echo "$BASE_KEY" >"$CACHE/base.key"
  rm -rf "$st"
fi

# Node runtime folder shared read-only: node, its shared libraries and the dynamic
# loader (dom0's initramfs has no glibc). Also the libraries of native addons in
# the project's node_modules (koffi, rollup, ...).
NODE_KEY=$(printf '%s %s' "$NODE_BIN" "$(stat -c '%s %Y' "$NODE_BIN")" | sha256sum | cut -c1-16)
NODE_DIR=$WORK/cache/node-$NODE_KEY
if [ ! -x "$NODE_DIR/bin/node" ]; then
  log "staging node runtime from $NODE_BIN"
  rm -rf "$NODE_DIR.tmp"
  mkdir -p "$NODE_DIR.tmp/bin" "$NODE_DIR.tmp/lib"
  cp "$NODE_BIN" "$NODE_DIR.tmp/bin/node"
  rm -rf "$NODE_DIR"
  mv "$NODE_DIR.tmp" "$NODE_DIR"
fi
add_libs_of() {   # copy what `ldd FILE` resolves (and the loader) into $NODE_DIR/lib
  local line lib
  while read -r line; do
    case $line in
      *"=> /"*) lib=${line#*=> }; lib=${lib%% (*} ;;
      /*) lib=${line%% (*} ;;
      *) continue ;;
    esac
    [ -e "$lib" ] || continue
    [ -e "$NODE_DIR/lib/$(basename "$lib")" ] || cp -L "$lib" "$NODE_DIR/lib/"
  done < <(timeout 30 ldd "$1" 2>/dev/null || true)
}
add_libs_of "$NODE_BIN"
[ -e "$NODE_DIR/lib/ld-linux-x86-64.so.2" ] || unavailable "ldd $NODE_BIN listed no ld-linux-x86-64.so.2"
if [ -d "$PROJECT_DIR/node_modules" ]; then
  while IFS= read -r addon; do
    add_libs_of "$addon"
  done < <(timeout 60 find "$PROJECT_DIR/node_modules" -name '*.node' -type f 2>/dev/null || true)
fi
for extra in librt.so.1 libresolv.so.2 libutil.so.1 libanl.so.1 libnss_files.so.2 libnss_dns.so.2; do
  for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu; do
    if [ -e "$d/$extra" ] && [ ! -e "$NODE_DIR/lib/$extra" ]; then cp -L "$d/$extra" "$NODE_DIR/lib/"; fi
  done
done

flock -u 9

# Xen's own toolstack (--with-xl): downloaded once into the cache by stage-xl.sh (its own lock).
XL_DIR=
if [ "$WITH_XL" = 1 ]; then
  XL_DIR=$("$HERE/stage-xl.sh") || {
    rc=$?
    [ "$rc" = 3 ] && exit 3
    unavailable "xen-vm/stage-xl.sh failed with exit $rc"
  }
fi
if [ "$WITH_XL" = 1 ] || [ "$GUEST_LOG" = 1 ]; then
  [ "$VCPUS" = 1 ] || log "WARNING: $([ "$WITH_XL" = 1 ] && echo --with-xl || echo --guest-log) with --vcpus $VCPUS: while an HVM/PVH guest runs, multi-threaded dom0 processes (node workers, esbuild, xl) crash or read corrupt memory unless dom0 has one vcpu (xen-vm/README.md)"
fi

# ---------------------------------------------------------------- this run
# Keep the 30 newest run dirs.
ls -1dt "$WORK"/runs/*/ 2>/dev/null | tail -n +31 | xargs -r rm -rf -- || true
RUN_ID=$(date +%Y%m%d-%H%M%S)-$$
RUN=$WORK/runs/$RUN_ID
mkdir -p "$RUN/initrd.d/job"
SERIAL_LOG=$RUN/serial.log

# -cpu max without SMAP: with qemu 7.2 TCG, Xen 4.17 using SMAP crashes the PV dom0 at its
# first exception ("d0v0 Unhandled: vec 14, #PF[0001]" from create_bounce_frame).
QEMU_CPU=${XENCALL_VM_QEMU_CPU:-max,-smap}
# Single-threaded TCG: with thread=multi, node in dom0 segfaulted at start-up in 3 of 40 and
# 4 of 30 launches (importing the package under tsx); with thread=single, 0 of 30. It is
# slower (about 1.7x for that loop), which the suite's timeouts allow for.
QEMU_ACCEL=${XENCALL_VM_QEMU_ACCEL:-tcg,thread=single}
QEMU_SMP=$(( VCPUS > 2 ? VCPUS : 2 ))
QEMU_MEM=$(( MEM + 1024 > 2048 ? MEM + 1024 : 2048 ))

# The job's environment (sourced by /init, exported to the command).
{
  echo "XCVM_RUN_DIR=$(shq "$RUN")"
  echo "XCVM_PROJECT_DIR=$(shq "$PROJECT_DIR")"
  echo "XCVM_NO_HYPERCALL_DEV=$NO_HYPERCALL_DEV"
  echo "XCVM_WITH_XL=$WITH_XL"
  echo "export XENCALL_VM=1"
  echo "export XENCALL_VM_XEN_VERSION=$(shq "$XEN_VERSION")"
  echo "export XENCALL_VM_XEN_PKG_VERSION=$(shq "$XEN_PKG_VERSION")"
  echo "export XENCALL_VM_KERNEL=$(shq "$KVER")"
  echo "export XENCALL_VM_VCPUS=$VCPUS"
  echo "export XENCALL_VM_DOM0_MEM_MB=$MEM"
  echo "export XENCALL_VM_QEMU_SMP=$QEMU_SMP"
  echo "export XENCALL_VM_QEMU_MEM_MB=$QEMU_MEM"
  echo "export XENCALL_VM_NO_HYPERCALL_DEV=$NO_HYPERCALL_DEV"
  echo "export XENCALL_VM_WITH_XL=$WITH_XL"
  echo "export XENCALL_VM_RUN_DIR=$(shq "$RUN")"
  for kv in ${EXTRA_ENV[@]+"${EXTRA_ENV[@]}"}; do
    echo "export ${kv%%=*}=$(shq "${kv#*=}")"
  done
} >"$RUN/initrd.d/job/env"
{
  printf 'exec'
  for a in "$@"; do printf ' %s' "$(shq "$a")"; done
  printf '\n'
} >"$RUN/initrd.d/job/cmd"

cat >"$RUN/initrd.d/init" <<'INIT'
#!/bin/busybox sh
# dom0 init, generated by xencall's xen-vm/run.sh
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=dumb
say() { echo "XENCALL-VM: [$(cut -d" " -f1 /proc/uptime 2>/dev/null)] $*" >/dev/console; }
halt_vm() { sync; poweroff -f; sleep 5; echo o >/proc/sysrq-trigger; }
fail() { say "INIT FAILED: $*"; halt_vm; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
say "init started"

insmod_list() {
  while read -r ko; do
    insmod "$ko" || say "insmod $ko failed"
  done <"$1"
}
insmod_list /etc/xencall-modules
mkdir -p /proc/xen
mount -t xenfs xenfs /proc/xen || say "mount xenfs failed"

. /job/env

mount9p() {   # TAG DIR EXTRA_OPTS; the virtio device may appear a moment after insmod
  mkdir -p "$2"
  i=0
  until mount -t 9p -o "trans=virtio,version=9p2000.L,msize=512000$3" "$1" "$2" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 100 ] || return 1
    sleep 0.1
  done
}
mount9p xcrun "$XCVM_RUN_DIR" "" || fail "cannot mount the run dir share"
exec >>"$XCVM_RUN_DIR/init.log" 2>&1
mount9p xcnode /opt/xencall-node ",ro,cache=loose" || fail "cannot mount the node share"
mount9p xcproj "$XCVM_PROJECT_DIR" ",cache=loose" || fail "cannot mount the project share"
say "modules loaded, shares mounted"

# node: the host's binary with its own glibc from the share. The loader is linked at
# node's PT_INTERP path (/lib64/ld-linux-x86-64.so.2) and the libraries at Debian's
# multiarch dir, so process.execPath is node itself (child processes, node --test work).
mkdir -p /lib64 /lib /usr/local/bin
ln -sf /opt/xencall-node/lib/ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2
ln -sfn /opt/xencall-node/lib /lib/x86_64-linux-gnu
ln -sf /opt/xencall-node/bin/node /usr/local/bin/node

if [ "$XCVM_NO_HYPERCALL_DEV" = 1 ]; then
  rm -f /dev/xen/hypercall
  [ ! -e /dev/xen/hypercall ] || fail "could not remove /dev/xen/hypercall"
fi

# Xen's own toolstack (--with-xl), started as Debian's xencommons would: xenstored, then
# xen-init-dom0 (dom0's entries in the store), then xenconsoled. Whatever happens is reported
# to the command in XENCALL_VM_XL / XENCALL_VM_XL_ERROR, never hidden: a failed start-up is for
# the command to fail on, loudly.
xl_fail() { XENCALL_VM_XL=failed; XENCALL_VM_XL_ERROR=$*; say "xl toolstack FAILED: $*"; }
wait_for_file() {   # FILE TENTHS
  i=0
  while [ ! -s "$1" ]; do
    i=$((i + 1))
    [ $i -lt "$2" ] || return 1
    sleep 0.1
  done
}
start_xl() {
  insmod_list /etc/xencall-modules-xl
  mount9p xcxl /opt/xencall-xl ",ro,cache=loose" || { xl_fail "cannot mount the toolstack share"; return; }
  # Xen's libraries at a directory the loader searches by default (there is no ld.so.cache),
  # so that xl, the libxl-save-helper it spawns and `sh -c 'xl migrate-receive'` all find them
  # whatever their environment; libxl's compiled-in paths (/usr/lib/xen-4.17/bin,
  # /etc/xen) point into the share.
  mkdir -p /usr/lib
  ln -sfn /opt/xencall-xl/lib /usr/lib/x86_64-linux-gnu
  ln -sfn /opt/xencall-xl/root/usr/lib/xen-4.17 /usr/lib/xen-4.17
  ln -sfn /opt/xencall-xl/root/etc/xen /etc/xen
  mkdir -p /var/run/xen /var/run/xenstored /var/lib/xen /var/lib/xenstored /var/log/xen/console /var/lock
  export PATH=/usr/lib/xen-4.17/bin:/opt/xencall-xl/root/usr/bin:$PATH
  xenstored --pid-file /var/run/xen/xenstored.pid >/var/log/xen/xenstored.out 2>&1 \
    || { xl_fail "xenstored exited $?"; return; }
  wait_for_file /var/run/xen/xenstored.pid 100 || { xl_fail "xenstored wrote no pid file in 10 s"; return; }
  timeout 30 xen-init-dom0 >/var/log/xen/xen-init-dom0.out 2>&1 \
    || { xl_fail "xen-init-dom0 exited $? ($(tail -n 3 /var/log/xen/xen-init-dom0.out | tr '\n' ' '))"; return; }
  xenconsoled --pid-file=/var/run/xen/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console \
    >/var/log/xen/xenconsoled.out 2>&1 || { xl_fail "xenconsoled exited $?"; return; }
  wait_for_file /var/run/xen/xenconsoled.pid 100 || { xl_fail "xenconsoled wrote no pid file in 10 s"; return; }
  # Ready when xl itself answers and sees dom0 by the name xen-init-dom0 gave it.
  timeout 30 xl list >/var/log/xen/xl-list.out 2>&1 && grep -q '^Domain-0 ' /var/log/xen/xl-list.out \
    || { xl_fail "xl list did not show Domain-0: $(tail -n 3 /var/log/xen/xl-list.out | tr '\n' ' ')"; return; }
  XENCALL_VM_XL=ready
  XENCALL_VM_XL_READY_AT=$(cut -d" " -f1 /proc/uptime)
  say "xl toolstack ready"
}
if [ "$XCVM_WITH_XL" = 1 ]; then
  start_xl
  export XENCALL_VM_XL XENCALL_VM_XL_ERROR XENCALL_VM_XL_READY_AT
fi

if [ -r /sys/hypervisor/version/major ]; then
  export XENCALL_VM_XEN_SYSFS_VERSION="$(cat /sys/hypervisor/version/major).$(cat /sys/hypervisor/version/minor)$(cat /sys/hypervisor/version/extra)"
fi
ls -l /dev/xen /proc/xen
env | sort >"$XCVM_RUN_DIR/env.txt"

cd "$XCVM_PROJECT_DIR" || fail "cannot cd to $XCVM_PROJECT_DIR"
say "job started"
sh /job/cmd <"/dev/null" >"$XCVM_RUN_DIR/stdout" 2>"$XCVM_RUN_DIR/stderr"
rc=$?
echo "$rc" >"$XCVM_RUN_DIR/exit_code.tmp" && mv "$XCVM_RUN_DIR/exit_code.tmp" "$XCVM_RUN_DIR/exit_code"
dmesg >"$XCVM_RUN_DIR/dmesg.txt" 2>&1
[ "$XCVM_WITH_XL" != 1 ] || cp -r /var/log/xen "$XCVM_RUN_DIR/xen-logs" 2>/dev/null
say "job finished exit=$rc"
cd /
sync
umount "$XCVM_PROJECT_DIR" /opt/xencall-node /opt/xencall-xl 2>/dev/null
halt_vm
INIT
chmod 755 "$RUN/initrd.d/init"

(cd "$RUN/initrd.d" && find . | LC_ALL=C sort | timeout 30 cpio -o -H newc -R 0:0 --quiet) \
  | timeout 30 gzip -1 >"$RUN/job.cpio.gz" || unavailable "cpio/gzip of the job initramfs failed"
cat "$BASE_CPIO" "$RUN/job.cpio.gz" >"$RUN/initrd.img"
rm -rf "$RUN/initrd.d" "$RUN/job.cpio.gz"

XEN_CMDLINE="console=com1 com1=115200,8n1 dom0_mem=${MEM}M,max:${MEM}M dom0_max_vcpus=$VCPUS bootscrub=0"
# With the toolstack, or --guest-log, there are guests to run: let their debug port (0xe9) reach
# Xen's console.
[ "$WITH_XL" = 0 ] && [ "$GUEST_LOG" = 0 ] || XEN_CMDLINE="$XEN_CMDLINE guest_loglvl=all"
# Debug knob: more Xen options (e.g. to try a workaround) without editing this script.
[ -z "${XENCALL_VM_XEN_ARGS:-}" ] || XEN_CMDLINE="$XEN_CMDLINE $XENCALL_VM_XEN_ARGS"
# panic=-1: a dom0 panic reboots at once, and -no-reboot turns that into a qemu exit.
DOM0_CMDLINE="console=hvc0 quiet panic=-1"
QEMU=(
  qemu-system-x86_64
  -accel "$QEMU_ACCEL" -cpu "$QEMU_CPU" -smp "$QEMU_SMP" -m "$QEMU_MEM"
  -nographic -no-reboot -nic none -serial mon:stdio
  -kernel "$XEN_ELF" -append "$XEN_CMDLINE"
  -initrd "$VMLINUX $DOM0_CMDLINE,$RUN/initrd.img"
  -virtfs "local,path=$RUN,mount_tag=xcrun,security_model=none,id=xcrun"
  -virtfs "local,path=$NODE_DIR,mount_tag=xcnode,security_model=none,id=xcnode,readonly=on"
  -virtfs "local,path=$PROJECT_DIR,mount_tag=xcproj,security_model=none,id=xcproj"
)
[ "$WITH_XL" = 0 ] || QEMU+=(-virtfs "local,path=$XL_DIR,mount_tag=xcxl,security_model=none,id=xcxl,readonly=on")
printf '%q ' "${QEMU[@]}" >"$RUN/qemu-cmdline.txt"
echo >>"$RUN/qemu-cmdline.txt"

T1=$(date +%s.%N)
log "run dir $RUN; booting Xen $XEN_VERSION + dom0 $KVER (mem ${MEM}M, vcpus $VCPUS$([ "$WITH_XL" = 0 ] || echo ", with xl"), timeout ${TIMEOUT}s)"
set +e
# qemu writes the raw serial stream to a file (no pipeline: nothing gets buffered);
# the \r are stripped afterwards.
timeout --kill-after=10 "$TIMEOUT" "${QEMU[@]}" </dev/null >"$RUN/serial.raw" 2>"$RUN/qemu.stderr"
QEMU_RC=$?
set -e
T2=$(date +%s.%N)
tr -d '\r' <"$RUN/serial.raw" >"$SERIAL_LOG" && rm -f "$RUN/serial.raw"
[ "${XENCALL_VM_KEEP_INITRD:-0}" = 1 ] || rm -f "$RUN/initrd.img"

BANNER=$(grep -m1 -oE 'Xen version [0-9][^ ]*' "$SERIAL_LOG" || true)
BANNER_VERSION=$(printf '%s' "$BANNER" | grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' | head -n1 || true)
[ -z "$BANNER" ] || grep -m1 'Xen version' "$SERIAL_LOG" >"$RUN/xen-banner.txt" || true
if [ -n "$BANNER_VERSION" ] && [ "$BANNER_VERSION" != "$XEN_VERSION" ]; then
  log "WARNING: the Xen banner says $BANNER_VERSION but $XEN_PKG is $XEN_VERSION"
fi
if [ "$VERBOSE" = 1 ]; then
  echo "----- serial log ($SERIAL_LOG) -----" >&2
  cat "$SERIAL_LOG" >&2
  echo "----- end of serial log -----" >&2
fi

timing() {
  awk -v a="$T0" -v b="$T1" -v c="$T2" \
    'BEGIN { printf "xen-vm: timing: prepare %.1fs, VM %.1fs, total %.1fs\n", b - a, c - b, c - a }' >&2
}
print_outputs() {
  [ ! -f "$RUN/stdout" ] || cat "$RUN/stdout"
  [ ! -f "$RUN/stderr" ] || cat "$RUN/stderr" >&2
}
show_failure() {
  echo "" >&2
  echo "==================================================================" >&2
  echo "$1" >&2
  echo "qemu exit status: $QEMU_RC; run dir: $RUN" >&2
  if [ -s "$RUN/qemu.stderr" ]; then echo "--- qemu stderr ---" >&2; tail -n 20 "$RUN/qemu.stderr" >&2; fi
  echo "--- last lines of the serial log ($SERIAL_LOG) ---" >&2
  tail -n 40 "$SERIAL_LOG" >&2 || true
  if [ -s "$RUN/init.log" ]; then echo "--- dom0 init log ---" >&2; tail -n 20 "$RUN/init.log" >&2; fi
  echo "==================================================================" >&2
  echo "$1" >&2
}

if [ -f "$RUN/exit_code" ]; then
  RC=$(cat "$RUN/exit_code")
  print_outputs
  if [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then
    log "WARNING: the command finished but the VM did not power off within ${TIMEOUT}s"
  fi
  log "serial log: $SERIAL_LOG"
  log "Xen: ${BANNER:-banner not found}; command exit status $RC"
  timing
  exit "$RC"
fi

print_outputs
if [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then
  show_failure "XEN-VM TIMEOUT: no result within ${TIMEOUT}s (the command was $(grep -q 'XENCALL-VM: job started' "$SERIAL_LOG" && echo started || echo never started))"
  timing
  exit 124
fi
if grep -q 'XENCALL-VM: job started' "$SERIAL_LOG"; then
  show_failure "XEN-VM FAILED: the VM stopped while the command was running, without reporting an exit status"
else
  show_failure "XEN-VM UNAVAILABLE: the VM could not start the command"
fi
timing
exit 3
