// Values of typed-call argument and result fields, copied from Xen 4.17's public headers (named
// per family below), keys spelled as in Xen without the prefix. test/typed-calls.test.ts compiles
// a probe against /usr/include/xen and fails on any difference.

/** domctl.h: the scheduler ids sysctl.sched_id and cpupool_op report (XEN_SCHEDULER_*). */
export const XEN_SCHEDULER = { CREDIT: 5, CREDIT2: 6, ARINC653: 7, RTDS: 8, NULL: 9 } as const;

/** domctl.h: xen_domctl_vcpuaffinity.flags (XEN_VCPUAFFINITY_*). */
export const XEN_VCPUAFFINITY = { HARD: 1, SOFT: 2, FORCE: 4 } as const;

/** sysctl.h: what cputopoinfo and numainfo report for an absent cpu or node (~0U). */
export const XEN_INVALID = { CORE_ID: 0xffffffff, SOCKET_ID: 0xffffffff, NODE_ID: 0xffffffff, MEM_SZ: 0xffffffff, NODE_DIST: 0xffffffff } as const;

/** hvm/params.h: the parameter indexes of hvm_op get_param/set_param (HVM_PARAM_*). */
export const HVM_PARAM = {
  CALLBACK_IRQ: 0,
  STORE_PFN: 1,
  STORE_EVTCHN: 2,
  PAE_ENABLED: 4,
  IOREQ_PFN: 5,
  BUFIOREQ_PFN: 6,
  VIRIDIAN: 9,
  TIMER_MODE: 10,
  HPET_ENABLED: 11,
  IDENT_PT: 12,
  DM_DOMAIN: 13,
  ACPI_S_STATE: 14,
  VM86_TSS: 15,
  VPT_ALIGN: 16,
  CONSOLE_PFN: 17,
  CONSOLE_EVTCHN: 18,
  ACPI_IOPORTS_LOCATION: 19,
  MEMORY_EVENT_CR0: 20,
  MEMORY_EVENT_CR3: 21,
  MEMORY_EVENT_CR4: 22,
  MEMORY_EVENT_INT3: 23,
  NESTEDHVM: 24,
  MEMORY_EVENT_SINGLE_STEP: 25,
  BUFIOREQ_EVTCHN: 26,
  PAGING_RING_PFN: 27,
  MONITOR_RING_PFN: 28,
  SHARING_RING_PFN: 29,
  MEMORY_EVENT_MSR: 30,
  TRIPLE_FAULT_REASON: 31,
  IOREQ_SERVER_PFN: 32,
  NR_IOREQ_SERVER_PAGES: 33,
  VM_GENERATION_ID_ADDR: 34,
  ALTP2M: 35,
  X87_FIP_WIDTH: 36,
  VM86_TSS_SIZED: 37,
  MCA_CAP: 38,
} as const;

/** hvm/params.h: one past the last parameter index; do_hvm_op refuses indexes from it (-EINVAL). */
export const HVM_NR_PARAMS = 39;

/** arch-x86/hvm/save.h: the header every HVM context blob starts with (checked by arch_hvm_load). */
export const HVM_FILE = { MAGIC: 0x54381286, VERSION: 0x00000001 } as const;

/**
 * Every family above with the C prefix its header spells, for the probe in
 * test/typed-calls.test.ts.
 */
export const VALUE_FAMILIES: readonly { readonly prefix: string; readonly header: string; readonly values: Readonly<Record<string, number>> }[] = [
  { prefix: 'XEN_SCHEDULER_', header: 'xen/domctl.h', values: XEN_SCHEDULER },
  { prefix: 'XEN_VCPUAFFINITY_', header: 'xen/domctl.h', values: XEN_VCPUAFFINITY },
  { prefix: 'XEN_INVALID_', header: 'xen/sysctl.h', values: XEN_INVALID },
  { prefix: 'HVM_PARAM_', header: 'xen/hvm/params.h', values: HVM_PARAM },
  { prefix: '', header: 'xen/hvm/params.h', values: { HVM_NR_PARAMS } },
  { prefix: 'HVM_FILE_', header: 'xen/hvm/save.h', values: HVM_FILE },
];
