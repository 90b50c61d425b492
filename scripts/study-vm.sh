# Sourced by the study scripts (efault-study.sh, saverestore-study.sh): one VM run of a study
# that writes its results over the 9p share, kept only if it wrote them.
#
#   study_run_vm NAME RESULTS VM_TIMEOUT VM_COMMAND...
#
# VM_COMMAND must write "$ROOT/$RESULTS.partial" (removed first, so an old file is never taken
# for a new one). Sets STUDY_RC (the command's status) and STUDY_WALL (seconds); moves the
# results to RESULTS, or exits (status 2 if the run itself said 0) when none were written.
# study_host prints the host line the renderers put under the figures.

study_run_vm() {
  local name=$1 results=$2 vm_timeout=$3
  shift 3
  rm -f "$results.partial"
  echo "$name: $*"
  local t0
  t0=$(date +%s)
  set +e
  # run.sh bounds qemu itself; the outer timeout is a backstop for the host-side steps.
  timeout --kill-after=15 $((vm_timeout + 60)) "$@"
  STUDY_RC=$?
  set -e
  STUDY_WALL=$(($(date +%s) - t0))
  echo "$name: the VM run took ${STUDY_WALL} s and exited $STUDY_RC"
  if [ ! -s "$results.partial" ]; then
    echo "$name: no results were written (exit $STUDY_RC); docs/ left as they are" >&2
    [ "$STUDY_RC" = 0 ] && STUDY_RC=2
    exit "$STUDY_RC"
  fi
  mv "$results.partial" "$results"
  echo "$name: results in $results"
}

study_host() {
  echo "$(nproc) host cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/^.*: //'))"
}
