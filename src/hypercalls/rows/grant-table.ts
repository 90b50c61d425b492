// Table rows for __HYPERVISOR_grant_table_op (xen/common/grant_table.c do_grant_table_op).
// The batched sub-ops (map, unmap, unmap_and_replace, transfer, copy, swap, cache_flush) loop
// over elements: copy element i in, act, copy its status out, with continuations between
// elements that advance the handle and count in registers. An EFAULT on element i therefore
// follows elements 0..i-1 (and perhaps i itself). Per-element failures go into `status`
// (GNTST_*, all <= 0), never into -EFAULT, so pre-filling every status with +1 shows after an
// EFAULT which elements were done: the first one still holding +1 is the ambiguous one.

import { type Citation, subopRows } from '../row.js';
import { GNTTABOP } from '../numbers.js';

const DO_GNTTAB: Citation = { file: 'xen/common/grant_table.c', function: 'do_grant_table_op' };
const gnttabFn = (fn: string): Citation => ({ file: 'xen/common/grant_table.c', function: fn });

const SENTINEL = 'Pre-fill every element\'s status with +1 (a value Xen never writes); after an EFAULT, elements whose status changed are done and the first one still holding +1 is ambiguous.';

const gnttab = subopRows('grant_table_op', GNTTABOP);

export const GRANT_TABLE_ROWS = [
  gnttab('map_grant_ref', {
    verdict: 'unsafe',
    longRunning: true,
    reason:
      'Each element is mapped (maptrack handle taken, the granter\'s entry pinned) before its status and handle are copied back; an EFAULT leaves elements before it mapped and the faulting one perhaps mapped with its handle never delivered. A re-issue maps them all again: extra handles and pins that stop the granter from revoking.',
    source: [DO_GNTTAB, gnttabFn('gnttab_map_grant_ref'), gnttabFn('map_grant_ref')],
    recovery: `${SENTINEL} Keep or unmap the done elements; the ambiguous one may stay mapped with an unknown handle until the mapping domain dies. From userspace prefer gntdev, which issues the op from the kernel.`,
  }),
  gnttab('unmap_grant_ref', {
    verdict: 'unsafe',
    longRunning: true,
    reason:
      'Each element is unmapped before its status is copied back, so an EFAULT follows unmaps already done. Re-issuing them yields GNTST_bad_handle per element, which is harmless unless the freed maptrack handle was meanwhile reused by a new mapping in the same domain (dom0\'s kernel shares the table), which the re-issue would then tear down.',
    source: [DO_GNTTAB, gnttabFn('gnttab_unmap_grant_ref'), gnttabFn('unmap_common')],
    recovery: `${SENTINEL} Re-issue only from the first +1 element on, and read GNTST_bad_handle for that element as "already unmapped".`,
  }),
  gnttab('setup_table', {
    verdict: 'safe',
    reason:
      'The table is grown up to nr_frames before the frame list and status are copied out, so an EFAULT can follow the growth; but the table never shrinks, and the same request again grows nothing and returns the same frames.',
    source: [DO_GNTTAB, gnttabFn('gnttab_setup_table')],
  }),
  gnttab('dump_table', {
    verdict: 'safe',
    faults: 'no-pointer',
    reason: 'Removed: 4.17 has no case for it and returns -ENOSYS without reading the argument, so it cannot fault.',
    source: [DO_GNTTAB],
  }),
  gnttab('transfer', {
    verdict: 'unsafe',
    longRunning: true,
    reason:
      'Each page changes owner (and the receiver\'s grant entry is marked transfer-completed) before the element\'s status is copied back; a re-issue tries to transfer pages the caller no longer owns and may consume further accept-transfer grants.',
    source: [DO_GNTTAB, gnttabFn('gnttab_transfer')],
    recovery: `${SENTINEL} For the ambiguous element check whether you still own the frame and whether the receiver's entry has GTF_transfer_completed. Never re-issue blindly.`,
  }),
  gnttab('copy', {
    verdict: 'unsafe',
    longRunning: true,
    reason:
      'Each element\'s data is copied between frames before its status is copied back. Copying again writes the same bytes, which is harmless only if neither source nor destination changed in between (say, the receiver already consumed the data); the table cannot know that.',
    source: [DO_GNTTAB, gnttabFn('gnttab_copy'), gnttabFn('gnttab_copy_one')],
    recovery: `Re-issue when the buffers are still as they were (optionally only from the first +1 element on: ${SENTINEL})`,
  }),
  gnttab('query_size', {
    verdict: 'safe',
    reason: 'Read-only: the table sizes are copied back.',
    source: [DO_GNTTAB, gnttabFn('gnttab_query_size')],
  }),
  gnttab('unmap_and_replace', {
    verdict: 'unsafe',
    longRunning: true,
    reason:
      'As unmap_grant_ref: each element is unmapped (and, PV, its PTE moved) before its status is copied back; a re-issue of a done element fails with GNTST_bad_handle before touching any PTE, unless the handle has been reused.',
    source: [DO_GNTTAB, gnttabFn('gnttab_unmap_and_replace')],
    recovery: `${SENTINEL} Re-issue from the first +1 element on and read GNTST_bad_handle there as done.`,
  }),
  gnttab('set_version', {
    verdict: 'safe',
    reason:
      'The version switch happens before the struct is copied back, but a re-issue with the same version returns 0 without touching anything. It acts on the caller\'s own table.',
    source: [DO_GNTTAB, gnttabFn('gnttab_set_version')],
  }),
  gnttab('get_status_frames', {
    verdict: 'safe',
    reason: 'Read-only: the status frame list and status are copied out.',
    source: [DO_GNTTAB, gnttabFn('gnttab_get_status_frames')],
  }),
  gnttab('get_version', {
    verdict: 'safe',
    reason: 'Read-only: the version is copied back.',
    source: [DO_GNTTAB, gnttabFn('gnttab_get_version')],
  }),
  gnttab('swap_grant_ref', {
    verdict: 'unsafe',
    longRunning: true,
    reason: 'Each pair is swapped before its status is copied back; a swap undoes itself, so re-issuing reverses every completed element.',
    source: [DO_GNTTAB, gnttabFn('gnttab_swap_grant_ref')],
    recovery: `${SENTINEL} Re-issue only from the first +1 element on, after checking the ambiguous element's two entries.`,
  }),
  gnttab('cache_flush', {
    verdict: 'safe',
    longRunning: true,
    reason: 'Elements are copied in and flushed, with no write-back; cache maintenance is idempotent, so an EFAULT after earlier elements is repaired by a re-issue.',
    source: [DO_GNTTAB, gnttabFn('gnttab_cache_flush')],
  }),
];
