// Table rows for __HYPERVISOR_hvm_op (xen/arch/x86/hvm/hvm.c do_hvm_op). Most sub-ops copy their
// struct in before acting; the getters copy it back with no effect. Sub-ops that 4.17 no longer
// handles (moved to dm_op or memory_op) fall to the default case: -ENOSYS before any copy.

import { defineRow, type Citation, subopRows } from '../row.js';
import { HVMOP } from '../numbers.js';
import { xen_hvm_altp2m_op, xen_hvm_param } from '../structs.js';
import { HVMOP_ALTP2M } from './constants.js';
import { sharedSchema } from '../schemas.js';
import { HVM_PARAM } from '../values.js';

const DO_HVM_OP: Citation = { file: 'xen/arch/x86/hvm/hvm.c', function: 'do_hvm_op' };
const hvmFn = (fn: string): Citation => ({ file: 'xen/arch/x86/hvm/hvm.c', function: fn });

const hvm = subopRows('hvm_op', HVMOP, { verdict: 'safe' });

const gone = <Op extends keyof typeof HVMOP & string>(op: Op, instead: string) =>
  hvm(op, {
    faults: 'no-pointer',
    reason: `${instead} do_hvm_op has no case for it and returns -ENOSYS without reading the argument, so it cannot fault.`,
    source: [DO_HVM_OP],
  });

/**
 * An HVM_PARAM_* index, as a number or by name without the prefix ('STORE_PFN'). Numbers are not
 * limited to the 4.17 names: do_hvm_op itself answers -EINVAL from HVM_NR_PARAMS on.
 */
const paramIndex = sharedSchema(({ z, u32 }) =>
  z.union([u32, z.enum(Object.keys(HVM_PARAM) as [keyof typeof HVM_PARAM, ...(keyof typeof HVM_PARAM)[]])]).transform((v) => (typeof v === 'number' ? v : HVM_PARAM[v])),
);

export const HVM_OP_ROWS = [
  hvm('set_param', {
    reason:
      'The struct is copied in before hvm_set_param() and nothing is copied back, so an EFAULT means "not set". (The only continuation, for HVM_PARAM_IDENT_PT while domctl_lock is busy, comes before any effect.)',
    source: [DO_HVM_OP, hvmFn('hvmop_set_param'), hvmFn('hvm_set_param')],
    args: (s) => s.z.object({ domid: s.domidOrSelf, index: paramIndex(s), value: s.u64 }).strict(),
  }),
  hvm('get_param', {
    readOnly: true,
    layout: xen_hvm_param,
    reason: 'Read-only: the parameter is read and the struct copied back.',
    source: [DO_HVM_OP, hvmFn('hvmop_get_param')],
    args: (s) => s.z.object({ domid: s.domidOrSelf, index: paramIndex(s) }).strict(),
  }),
  gone('set_pci_intx_level', 'Exists only for interface versions before 0x00040900 (now dm_op.set_pci_intx_level):'),
  gone('set_isa_irq_level', 'Exists only for interface versions before 0x00040900 (now dm_op.set_isa_irq_level):'),
  gone('set_pci_link_route', 'Exists only for interface versions before 0x00040900 (now dm_op.set_pci_link_route):'),
  hvm('flush_tlbs', {
    faults: 'no-pointer',
    longRunning: true,
    reason: 'The argument must be NULL; flushing the caller\'s TLBs is idempotent (it continues while the paging lock is busy). It cannot fault.',
    source: [DO_HVM_OP, hvmFn('hvmop_flush_tlb_all')],
  }),
  hvm('pagetable_dying', {
    reason: 'The struct is copied in before pagetable_dying() (caller\'s own shadow-mode domain only); nothing is copied back.',
    source: [DO_HVM_OP],
  }),
  hvm('get_time', {
    reason: 'Read-only: NOW() is copied out.',
    source: [DO_HVM_OP],
  }),
  hvm('xentrace', {
    reason: 'The record is copied in before trace_var() writes it; nothing is copied back.',
    source: [DO_HVM_OP],
  }),
  gone('set_mem_access', 'Tools-only and removed (memory_op.access_op replaces it):'),
  gone('get_mem_access', 'Tools-only and removed (memory_op.access_op replaces it):'),
  hvm('get_mem_type', {
    reason: 'Read-only: the type is looked up without populating or unsharing and the struct copied back.',
    source: [DO_HVM_OP, hvmFn('hvmop_get_mem_type')],
  }),
  hvm('set_evtchn_upcall_vector', {
    reason: 'The struct is copied in before the caller\'s vcpu upcall vector is set; nothing is copied back, and the setter is idempotent.',
    source: [DO_HVM_OP, hvmFn('hvmop_set_evtchn_upcall_vector')],
  }),
  hvm('guest_request_vm_event', {
    faults: 'no-pointer',
    reason: 'The argument must be NULL; it raises a monitor event for the caller and cannot fault.',
    source: [DO_HVM_OP],
  }),
  defineRow({
    name: 'hvm_op.altp2m',
    hypercall: 'hvm_op',
    subop: HVMOP.altp2m,
    layout: xen_hvm_altp2m_op,
    verdict: 'conditional',
    condition: { text: 'unsafe when cmd is HVMOP_altp2m_create_p2m (4)', unsafeWhen: (a) => a.cmd === HVMOP_ALTP2M.create_p2m },
    faults: 'copies',
    longRunning: true,
    reason:
      'do_altp2m_op copies the struct in and dispatches on cmd. create_p2m allocates a view before the struct with its id is copied back: after an EFAULT the view exists unknown, and a re-issue creates another. The getters are read-only, the setters copy in only or are idempotent (set_mem_access_multi and set_suppress_ve_multi continue with progress in the struct: re-issue from the pristine one).',
    source: [DO_HVM_OP, hvmFn('do_altp2m_op')],
    recovery:
      'create_p2m: destroy_p2m every view id in 1..MAX_ALTP2M-1 you do not own (the leaked one is the lowest such; -EBUSY means in use), unambiguous only when nobody else creates views meanwhile.',
    verified: true,
  }),
];
