#!/bin/bash
# npm run study:saverestore — the save/restore study on a real Xen (docs/saverestore.md).
#
# Builds the test guest and xl's C guest on the host, boots real Xen 4.17 with Xen's own
# toolstack in dom0 (xen-vm/run.sh --with-xl --vcpus 1: one dom0 vcpu, as anything that runs a
# guest here must) and runs study/saverestore.ts there: xencall's live migration, save and
# restore of the running test guest three ways (/dev/xen/hypercall buffers; locked buffers under
# the soft-offline stressor with the retry on; the same with it off), then xl against xencall on
# xl's guest. The results land in study/saverestore.results.json over the 9p share;
# scripts/saverestore-study-render.ts rewrites the generated section of docs/saverestore.md,
# docs/saverestore.svg and the xl table of docs/performance.md.
#
#   scripts/saverestore-study.sh [study options...]   e.g. --cycles 2 --ways 1,2
#
# Environment:
#   XENCALL_STUDY_VM_TIMEOUT   seconds for the VM (default 1500)
#   XENCALL_STUDY_NO_RENDER=1  keep docs/ as they are
#
# Exit status: 0 when every invariant held; 1 when one failed (the docs are still rendered and
# say so); 3 when the VM is unavailable; otherwise the VM's or the study's status.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
VM_TIMEOUT=${XENCALL_STUDY_VM_TIMEOUT:-1500}
RESULTS=study/saverestore.results.json
cd "$ROOT"
# shellcheck source=scripts/study-vm.sh
. "$HERE/study-vm.sh"

"$ROOT/xen-vm/install-packages.sh" >&2 || exit $?
GUEST=$(node --import tsx scripts/build-test-guest.ts "$ROOT/node_modules/.cache/xencall")
XL_GUEST=$("$ROOT/scripts/build-xl-guest.sh" "$ROOT/node_modules/.cache/xencall-xl")

vm_cmd=(xen-vm/run.sh --timeout "$VM_TIMEOUT" --with-xl --vcpus 1 --
  node --import tsx study/saverestore.ts --image "$GUEST" --xl-kernel "$XL_GUEST" "$@" --out "$ROOT/$RESULTS.partial")
study_run_vm saverestore-study "$RESULTS" "$VM_TIMEOUT" "${vm_cmd[@]}"
if [ "${XENCALL_STUDY_NO_RENDER:-0}" != 1 ]; then
  node --import tsx scripts/saverestore-study-render.ts --results "$RESULTS" --wall "$STUDY_WALL" --host "$(study_host)"
fi
exit "$STUDY_RC"
