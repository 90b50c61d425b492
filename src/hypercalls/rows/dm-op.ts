// Table rows for __HYPERVISOR_dm_op (xen/common/dm.c do_dm_op, xen/arch/x86/hvm/dm.c dm_op; the
// ioreq sub-ops in xen/common/ioreq.c ioreq_server_dm_op). Every sub-op first copies the buffer
// array, then the header and payload from buffer 0 (faults there come before any effect). Sub-ops
// that produce output copy the payload back after acting (only on success or -ERESTART), which
// is the after-effect fault point; -ERESTART continues by re-reading everything.
// Linux's IOCTL_PRIVCMD_DM_OP pins every buffer before the hypercall, so none of these faults is
// transient there: the verdicts matter for a raw dm_op through IOCTL_PRIVCMD_HYPERCALL.
// These rows carry no layout: the table does not decode dm_op buffers.

import { type Citation, subopRows } from '../row.js';
import { DMOP } from '../numbers.js';

const DM_OP: Citation = { file: 'xen/arch/x86/hvm/dm.c', function: 'dm_op' };
const IOREQ_DM_OP: Citation = { file: 'xen/common/ioreq.c', function: 'ioreq_server_dm_op' };
const dmFn = (fn: string): Citation => ({ file: 'xen/arch/x86/hvm/dm.c', function: fn });
const ioreqFn = (fn: string): Citation => ({ file: 'xen/common/ioreq.c', function: fn });

const dm = subopRows('dm_op', DMOP);

/** A const sub-op: nothing is copied back, so every fault precedes the effect. */
const inputOnly = <Op extends keyof typeof DMOP & string>(op: Op, effect: string, source: readonly Citation[], extra = '') =>
  dm(op, {
    verdict: 'safe',
    reason: `The buffers are copied in before ${effect} and nothing is copied back, so an EFAULT means nothing happened.${extra ? ` ${extra}` : ''}`,
    source,
  });

export const DM_OP_ROWS = [
  dm('create_ioreq_server', {
    verdict: 'unsafe',
    reason:
      'ioreq_server_create() allocates the server at the lowest free id (of 8) before the payload with the id is copied back; after an EFAULT the server exists unknown, and a re-issue creates a second one (leaks end in -ENOSPC).',
    source: [DM_OP, IOREQ_DM_OP, ioreqFn('ioreq_server_create')],
    recovery:
      'For ids 0..7 call get_ioreq_server_info with flags = XEN_DMOP_no_gfns: -ENOENT is free, -EPERM belongs to another emulator, 0 is yours. A 0 you do not know is the leaked server: adopt it (disabled, no ranges) or destroy it.',
  }),
  dm('get_ioreq_server_info', {
    verdict: 'safe',
    reason:
      'Unless XEN_DMOP_no_gfns is set, the first call maps the ioreq pages into guest gfns before the payload is copied back; mapping again finds them mapped, so a re-issue returns the same gfns and port.',
    source: [IOREQ_DM_OP, ioreqFn('ioreq_server_get_info'), { file: 'xen/arch/x86/hvm/ioreq.c', function: 'arch_ioreq_server_map_pages' }],
  }),
  inputOnly('map_io_range_to_ioreq_server', 'the range is added', [IOREQ_DM_OP, ioreqFn('ioreq_server_map_io_range')]),
  inputOnly('unmap_io_range_from_ioreq_server', 'the range is removed', [IOREQ_DM_OP, ioreqFn('ioreq_server_unmap_io_range')]),
  inputOnly('set_ioreq_server_state', 'the server is enabled or disabled', [IOREQ_DM_OP, ioreqFn('ioreq_server_set_state')]),
  inputOnly('destroy_ioreq_server', 'ioreq_server_destroy()', [IOREQ_DM_OP, ioreqFn('ioreq_server_destroy')]),
  dm('track_dirty_vram', {
    verdict: 'unsafe',
    reason:
      'Under HAP, paging_log_dirty_range() re-protects each dirty pfn (consuming its dirty bit) before the bitmap is copied to buffer 1: after an EFAULT a re-issue reports those pages clean. Shadow paging puts the bits back when the copy fails, so it is safe there, but the table cannot tell the two apart.',
    source: [dmFn('track_dirty_vram'), { file: 'xen/arch/x86/mm/hap/hap.c', function: 'hap_track_dirty_vram' }, { file: 'xen/arch/x86/mm/shadow/hvm.c', function: 'shadow_track_dirty_vram' }],
    recovery: 'After an EFAULT treat the whole range [first_pfn, first_pfn + nr) as dirty (redraw everything), then keep polling.',
  }),
  inputOnly('set_pci_intx_level', 'the INTx line is asserted or deasserted', [dmFn('set_pci_intx_level')]),
  inputOnly('set_isa_irq_level', 'the ISA IRQ is asserted or deasserted', [dmFn('set_isa_irq_level')]),
  inputOnly('set_pci_link_route', 'the link is routed', [DM_OP]),
  dm('modified_memory', {
    verdict: 'safe',
    longRunning: true,
    reason:
      'Extents are read from buffer 1 while pfns are marked dirty, and every 256 pfns the header is copied back with the progress before a continuation; an EFAULT can follow marks already made, but marking dirty again is idempotent.',
    source: [DM_OP, dmFn('modified_memory')],
  }),
  dm('set_mem_type', {
    verdict: 'unsafe',
    longRunning: true,
    reason:
      'Types change pfn by pfn before the payload (advanced first_pfn and nr) is copied back, on success or every 256 pfns; an EFAULT can follow changes. Re-applying ram_rw, ram_ro or mmio_dm is harmless, but converting to HVMMEM_ioreq_server requires old type ram_rw, so a re-issue fails with -EINVAL at the first converted pfn; the table cannot read mem_type here.',
    source: [DM_OP, dmFn('set_mem_type'), dmFn('allow_p2m_type_change')],
    recovery:
      'ram_rw/ram_ro/mmio_dm: re-issue. HVMMEM_ioreq_server: find the first pfn still HVMMEM_ram_rw with hvm_op.get_mem_type (pfns go in ascending order) and re-issue from there.',
  }),
  inputOnly('inject_event', 'the event is queued on the vcpu', [dmFn('inject_event')]),
  inputOnly('inject_msi', 'hvm_inject_msi()', [DM_OP]),
  dm('map_mem_type_to_ioreq_server', {
    verdict: 'unsafe',
    longRunning: true,
    reason:
      'The server is (un)mapped for the type before the payload is copied back; a re-issued map returns -EBUSY (already mapped), and a re-issued unmap with opaque = 0 returns -EINVAL (no server), leaving the type-reset sweep undone.',
    source: [DM_OP, ioreqFn('ioreq_server_map_mem_type'), { file: 'xen/arch/x86/mm/p2m.c', function: 'p2m_set_ioreq_server' }],
    recovery:
      'Map: read -EBUSY on a retry as success if only your server maps the type. Unmap: re-issue with flags = 0 and opaque = 1, which skips the unmap and runs only the type-reset sweep.',
  }),
  inputOnly('remote_shutdown', 'domain_shutdown()', [DM_OP]),
  dm('relocate_memory', {
    verdict: 'unsafe',
    longRunning: true,
    reason:
      'Pages move from src to dst (xenmem_add_to_physmap, gmfn_range) and the advanced size/src/dst are copied back only on -ERESTART, which can fault after pages moved. Moving is not idempotent: a re-issue of the original arguments finds empty source gfns and does not move the rest.',
    source: [DM_OP, { file: 'xen/common/memory.c', function: 'xenmem_add_to_physmap' }],
    recovery:
      'Find the progress by probing with hvm_op.get_mem_type (a moved src gfn is a hole, an arrived dst gfn is ram) and re-issue with size, src_gfn and dst_gfn advanced past the moved prefix.',
    verified: false,
  }),
  inputOnly('pin_memory_cacheattr', 'hvm_set_mem_pinned_cacheattr()', [DM_OP, { file: 'xen/arch/x86/hvm/mtrr.c', function: 'hvm_set_mem_pinned_cacheattr' }]),
  dm('set_irq_level', {
    verdict: 'safe',
    reason: 'Arm only: x86 has no payload size for it and ends in -EOPNOTSUPP after reading the buffers, with no effect.',
    source: [DM_OP, IOREQ_DM_OP],
  }),
  dm('nr_vcpus', {
    verdict: 'safe',
    reason: 'Read-only: the vcpu count is copied back.',
    source: [DM_OP],
  }),
];
