#!/bin/bash
# Xen's own toolstack timed on the PVH test guest (study/xl-baseline.ts): xl create, save,
# restore, a live localhost migrate and destroy, per guest size, in one dom0 run.
#
#   scripts/xl-baseline.sh [--memory 16,64] [--rounds 2] [--out FILE]
#
# Builds the guest on the host (scripts/build-xl-guest.sh), boots real Xen with Xen's toolstack
# (xen-vm/run.sh --with-xl --vcpus 1: see xen-vm/README.md for why one dom0 vcpu), prints each
# timing and a median table. Exit status: the study's (1 when an xl run failed), 3 when the VM
# or the toolstack is unavailable.
#
# Environment: XENCALL_XL_VM_TIMEOUT seconds for the VM (default 900).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
VM_TIMEOUT=${XENCALL_XL_VM_TIMEOUT:-900}
cd "$ROOT"
"$ROOT/xen-vm/install-packages.sh" >&2 || exit $?
GUEST=$("$ROOT/scripts/build-xl-guest.sh" "$ROOT/node_modules/.cache/xencall-xl")
timeout --kill-after=15 $((VM_TIMEOUT + 60)) "$ROOT/xen-vm/run.sh" --timeout "$VM_TIMEOUT" --with-xl --vcpus 1 -- \
  node --import tsx study/xl-baseline.ts --kernel "$GUEST" "$@"
