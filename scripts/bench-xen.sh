#!/bin/bash
# npm run bench:xen — what xencall costs per hypercall inside a real Xen dom0, against C.
#
# On the host:
#   1. bundles bench/xen.ts (with src/) into one plain-JS file with esbuild, so dom0 runs built
#      JS and never compiles TypeScript under emulation (tsx is slow there);
#   2. compiles bench/c/libxencall-bench.c statically against Debian's libxencall.a
#      (libxen-dev), into the cache dir; nothing built here is committed;
#   3. boots the VM once (xen-vm/run.sh) and runs the node benchmark in dom0, which spawns the C
#      program once per round so C and node batches interleave in that one dom0 run;
#   4. reads the JSON back through the project share and prints the table with ratios.
#
# The cache dir must be inside the project (dom0 sees the project at the same path):
# node_modules/.cache/xencall-bench by default.
#
# Environment:
#   XENCALL_BENCH_BATCH    calls per batch (default 300)
#   XENCALL_BENCH_ROUNDS   rounds (default 24)
#   XENCALL_BENCH_GC_PER_BATCH  1: a full gc before every timed batch (default 0; see bench/xen.ts)
#   XENCALL_BENCH_LIST     domains for the list comparison, dom0 included (default 8)
#   XENCALL_BENCH_TIMEOUT  seconds for the VM (default 420)
#   XENCALL_BENCH_VM_ARGS  extra xen-vm/run.sh options, e.g. "--no-hypercall-dev"
#   XENCALL_BENCH_CACHE    the cache dir (inside the project)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CACHE=${XENCALL_BENCH_CACHE:-$ROOT/node_modules/.cache/xencall-bench}
BATCH=${XENCALL_BENCH_BATCH:-300}
ROUNDS=${XENCALL_BENCH_ROUNDS:-24}
GC_PER_BATCH=${XENCALL_BENCH_GC_PER_BATCH:-0}
LIST=${XENCALL_BENCH_LIST:-8}
TIMEOUT=${XENCALL_BENCH_TIMEOUT:-420}
read -r -a VM_ARGS <<<"${XENCALL_BENCH_VM_ARGS:-}"

case $CACHE in
  "$ROOT"/*) ;;
  *) echo "bench-xen: XENCALL_BENCH_CACHE must be inside $ROOT (dom0 only sees the project)" >&2; exit 2 ;;
esac
mkdir -p "$CACHE"
cd "$ROOT"

# ---- 1. the node benchmark, bundled -----------------------------------------------------------
echo "bench-xen: bundling bench/xen.ts" >&2
node_modules/.bin/esbuild bench/xen.ts --bundle --platform=node --format=esm --target=node20 \
  --external:koffi --log-level=warning --outfile="$CACHE/xen-bench.mjs"

# ---- 2. the C benchmark against libxencall ----------------------------------------------------
"$ROOT/xen-vm/install-packages.sh" >&2 || { echo "bench-xen: xen-vm/install-packages.sh failed; no VM, no benchmark" >&2; exit 3; }
for a in libxencall.a libxentoolcore.a libxentoollog.a; do
  [ -e "/usr/lib/x86_64-linux-gnu/$a" ] || { echo "bench-xen: /usr/lib/x86_64-linux-gnu/$a missing (apt-get install libxen-dev)" >&2; exit 3; }
done
echo "bench-xen: compiling bench/c/libxencall-bench.c against $(dpkg-query -W -f='libxen-dev ${Version}' libxen-dev 2>/dev/null || echo libxencall.a)" >&2
cc -O2 -Wall -Wextra -static -o "$CACHE/libxencall-bench" bench/c/libxencall-bench.c \
  -lxencall -lxentoolcore -lxentoollog

# ---- 3. one dom0 run ---------------------------------------------------------------------------
OUT="$CACHE/result-$(date +%Y%m%d-%H%M%S)-$$.json"
HOST_DESC="$(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench-xen: booting Xen (timeout ${TIMEOUT}s); $ROUNDS rounds x $BATCH calls" >&2
set +e
timeout --kill-after=15 $((TIMEOUT + 60)) "$ROOT/xen-vm/run.sh" --timeout "$TIMEOUT" ${VM_ARGS[@]+"${VM_ARGS[@]}"} \
  --env "XENCALL_BENCH_HOST=$HOST_DESC" -- \
  node --expose-gc "$CACHE/xen-bench.mjs" --c "$CACHE/libxencall-bench" --out "$OUT" \
  --batch "$BATCH" --rounds "$ROUNDS" --list "$LIST" --gc-per-batch "$GC_PER_BATCH" >"$CACHE/last-stdout.txt"
rc=$?
set -e
if [ "$rc" != 0 ] || [ ! -s "$OUT" ]; then
  cat "$CACHE/last-stdout.txt"
  echo "bench-xen: the dom0 run failed (exit $rc); see the output above" >&2
  exit "$(( rc == 0 ? 1 : rc ))"
fi

# ---- 4. the table ------------------------------------------------------------------------------
echo
node "$CACHE/xen-bench.mjs" --report "$OUT"
echo
echo "results: $OUT"
