#!/bin/bash
# npm run study:efault — the EFAULT study on a real Xen (docs/efault-study.md).
#
# Boots real Xen 4.17 with a Debian PV dom0 under qemu (xen-vm/run.sh) once, with
# /dev/xen/hypercall present: way 1 uses it, ways 2-4 and the unsafe op open the privcmd backend
# with hypercallBufPath null (locked anonymous buffers) in the same boot. study/efault.ts runs in
# dom0 and writes study/efault-study.results.json over the project's 9p share; then
# scripts/efault-study-render.ts rewrites the generated section of docs/efault-study.md and
# docs/efault-study.svg on the host.
#
#   scripts/efault-study.sh [study options...]     e.g. --way-seconds 10 --cap 2000
#
# Study options (study/efault.ts): --ways 1,2,3,4  --way-seconds S  --unsafe-seconds S
#   --batch N  --interval-ms MS  --cap PAGES (soft-offlines per phase; each page is lost to dom0)
#
# Environment:
#   XENCALL_STUDY_VM_TIMEOUT  seconds for the VM (default 600)
#   XENCALL_STUDY_NO_RENDER=1 keep docs/ as they are (only the results file is written)
#
# Exit status: 0 when every invariant held; 1 when one failed (the doc is still rendered, and
# says so); 3 when the VM is unavailable; otherwise the VM's or the study's status.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
VM_TIMEOUT=${XENCALL_STUDY_VM_TIMEOUT:-600}
RESULTS=study/efault-study.results.json
cd "$ROOT"
# shellcheck source=scripts/study-vm.sh
. "$HERE/study-vm.sh"

"$ROOT/xen-vm/install-packages.sh" || exit $?

# The study writes a fresh results file; an old one must not be rendered as if it were new.
study_cmd=(node --import tsx study/efault.ts "$@" --out "$ROOT/$RESULTS.partial")
vm_cmd=(xen-vm/run.sh --timeout "$VM_TIMEOUT" -- "${study_cmd[@]}")
study_run_vm efault-study "$RESULTS" "$VM_TIMEOUT" "${vm_cmd[@]}"

if [ "${XENCALL_STUDY_NO_RENDER:-0}" != 1 ]; then
  node --import tsx scripts/efault-study-render.ts --results "$RESULTS" \
    --command "${vm_cmd[*]/$ROOT\//}" --wall "$STUDY_WALL" --host "$(study_host)"
fi
exit "$STUDY_RC"
