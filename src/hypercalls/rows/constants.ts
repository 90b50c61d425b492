// Values of Xen 4.17's sub-sub-op and mode fields that the table's per-mode rows and conditions
// test (a mode field's value, a condition's comparison). numbers.ts leaves these families out;
// they are copied here from the headers named below, keys spelled as in Xen without the prefix.
// test/table-coverage.test.ts reads every one back from /usr/include/xen and fails on a difference.

/** domctl.h: xen_domctl_vm_event_op.op (XEN_VM_EVENT_*). */
export const XEN_VM_EVENT = { ENABLE: 0, DISABLE: 1, RESUME: 2, GET_VERSION: 3 } as const;

/** domctl.h: xen_domctl_monitor_op.op (XEN_DOMCTL_MONITOR_OP_*). */
export const XEN_DOMCTL_MONITOR_OP = {
  ENABLE: 0,
  DISABLE: 1,
  GET_CAPABILITIES: 2,
  EMULATE_EACH_REP: 3,
  CONTROL_REGISTERS: 4,
} as const;

/** domctl.h: xen_domctl_vmtrace_op.cmd (XEN_DOMCTL_vmtrace_*). */
export const XEN_DOMCTL_VMTRACE = {
  enable: 1,
  disable: 2,
  reset_and_enable: 3,
  output_position: 4,
  get_option: 5,
  set_option: 6,
} as const;

/** sysctl.h: xen_sysctl_tbuf_op.cmd (XEN_SYSCTL_TBUFOP_*). */
export const XEN_SYSCTL_TBUFOP = { get_info: 0, set_cpu_mask: 1, set_evt_mask: 2, set_size: 3, enable: 4, disable: 5 } as const;

/** sysctl.h: xen_sysctl_perfc_op.cmd (XEN_SYSCTL_PERFCOP_*). */
export const XEN_SYSCTL_PERFCOP = { reset: 1, query: 2 } as const;

/** sysctl.h: the one xen_sysctl_pm_op.cmd whose reply differs on a repeat (XEN_SYSCTL_pm_op_*). */
export const XEN_SYSCTL_PM_OP = { set_sched_opt_smt: 0x21 } as const;

/** sysctl.h: xen_sysctl_cpupool_op.op (XEN_SYSCTL_CPUPOOL_OP_*). */
export const XEN_SYSCTL_CPUPOOL_OP = {
  CREATE: 1,
  DESTROY: 2,
  INFO: 3,
  ADDCPU: 4,
  RMCPU: 5,
  MOVEDOMAIN: 6,
  FREEINFO: 7,
} as const;

/** sysctl.h: xen_sysctl_livepatch_op.cmd (XEN_SYSCTL_LIVEPATCH_*). */
export const XEN_SYSCTL_LIVEPATCH = { UPLOAD: 0, GET: 1, LIST: 2, ACTION: 3 } as const;

/** memory.h: xen_add_to_physmap(_batch).space (XENMAPSPACE_*). */
export const XENMAPSPACE = {
  shared_info: 0,
  grant_table: 1,
  gmfn: 2,
  gmfn_range: 3,
  gmfn_foreign: 4,
  dev_mmio: 5,
} as const;

/** memory.h: xen_mem_paging_op.op (XENMEM_paging_op_*). */
export const XENMEM_PAGING_OP = { nominate: 0, evict: 1, prep: 2 } as const;

/** hvm/hvm_op.h: xen_hvm_altp2m_op.cmd, the one that allocates (HVMOP_altp2m_*). */
export const HVMOP_ALTP2M = { create_p2m: 4 } as const;

/** physdev.h: physdev_map_pirq.type (MAP_PIRQ_TYPE_*). Note MSI is 0 and GSI is 1. */
export const MAP_PIRQ_TYPE = { MSI: 0x0, GSI: 0x1, UNKNOWN: 0x2, MSI_SEG: 0x3, MULTI_MSI: 0x4 } as const;

/** Each family with the prefix its header spells, for the test that reads them back. */
export const HEADER_CONSTANTS: readonly { readonly prefix: string; readonly values: Readonly<Record<string, number>> }[] = [
  { prefix: 'XEN_VM_EVENT_', values: XEN_VM_EVENT },
  { prefix: 'XEN_DOMCTL_MONITOR_OP_', values: XEN_DOMCTL_MONITOR_OP },
  { prefix: 'XEN_DOMCTL_vmtrace_', values: XEN_DOMCTL_VMTRACE },
  { prefix: 'XEN_SYSCTL_TBUFOP_', values: XEN_SYSCTL_TBUFOP },
  { prefix: 'XEN_SYSCTL_PERFCOP_', values: XEN_SYSCTL_PERFCOP },
  { prefix: 'XEN_SYSCTL_pm_op_', values: XEN_SYSCTL_PM_OP },
  { prefix: 'XEN_SYSCTL_CPUPOOL_OP_', values: XEN_SYSCTL_CPUPOOL_OP },
  { prefix: 'XEN_SYSCTL_LIVEPATCH_', values: XEN_SYSCTL_LIVEPATCH },
  { prefix: 'XENMAPSPACE_', values: XENMAPSPACE },
  { prefix: 'XENMEM_paging_op_', values: XENMEM_PAGING_OP },
  { prefix: 'HVMOP_altp2m_', values: HVMOP_ALTP2M },
  { prefix: 'MAP_PIRQ_TYPE_', values: MAP_PIRQ_TYPE },
];
