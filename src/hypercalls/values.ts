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

/** arch-x86/xen.h: xen_arch_domainconfig.emulation_flags (XEN_X86_EMU_*). */
export const XEN_X86_EMU = {
  LAPIC: 1 << 0,
  HPET: 1 << 1,
  PM: 1 << 2,
  RTC: 1 << 3,
  IOAPIC: 1 << 4,
  PIC: 1 << 5,
  VGA: 1 << 6,
  IOMMU: 1 << 7,
  PIT: 1 << 8,
  USE_PIRQ: 1 << 9,
  VPCI: 1 << 10,
  ALL: 0x7ff,
} as const;

/** arch-x86/xen.h: xen_arch_domainconfig.misc_flags bits arch_sanitise_domain_config accepts. */
export const XEN_X86_MISC = { MSR_RELAXED: 1 << 0 } as const;

/** domctl.h: the grant table version bits of xen_domctl_createdomain.grant_opts. */
export const XEN_DOMCTL_GRANT = { version_mask: 0xf } as const;

/** sched.h: shutdown reasons (SHUTDOWN_*), as getdomaininfo reports them. */
export const SHUTDOWN = { poweroff: 0, reboot: 1, suspend: 2, crash: 3, watchdog: 4, soft_reset: 5 } as const;

/** elfnote.h: the ELF note a PVH kernel's 32-bit entry point is given in (XEN_ELFNOTE_*). */
export const XEN_ELFNOTE = { PHYS32_ENTRY: 18 } as const;

/**
 * x86 control-register bits (X86_CR0_*, X86_CR4_*), for the HVM CPU record: Xen's own
 * asm/x86-defns.h is not installed, so the probe reads Linux's uapi asm/processor-flags.h,
 * which spells them the same.
 */
export const X86_CR0 = { PE: 1 << 0, MP: 1 << 1, EM: 1 << 2, TS: 1 << 3, ET: 1 << 4, NE: 1 << 5, WP: 1 << 16, AM: 1 << 18, NW: 1 << 29, CD: 1 << 30, PG: 0x80000000 } as const;
export const X86_CR4 = {
  VME: 1 << 0,
  PVI: 1 << 1,
  TSD: 1 << 2,
  DE: 1 << 3,
  PSE: 1 << 4,
  PAE: 1 << 5,
  MCE: 1 << 6,
  PGE: 1 << 7,
  PCE: 1 << 8,
  OSFXSR: 1 << 9,
  OSXMMEXCPT: 1 << 10,
  FSGSBASE: 1 << 16,
  OSXSAVE: 1 << 18,
  SMEP: 1 << 20,
} as const;

/**
 * The reset values of %dr6 and %dr7 libxenguest puts in a new PVH vcpu (X86_DR6_DEFAULT,
 * X86_DR7_DEFAULT in Xen's asm/x86-defns.h). The probe reads DR6's from Linux's uapi
 * asm/debugreg.h (DR6_RESERVED); no installed header has DR7's, so a golden test pins it.
 */
export const X86_DR_DEFAULT = { DR6: 0xffff0ff0, DR7: 0x00000400 } as const;

/** uapi asm/mtrr.h: the MTRR memory type libxenguest makes a PVH guest's default (MTRR_TYPE_*). */
export const MTRR_TYPE = { WRBACK: 6 } as const;

/**
 * Numbers no installed header defines, pinned by a golden test instead, each with where Xen
 * spells it (RELEASE-4.17.7).
 */
export const X86_PINNED = {
  /** MTRRdefType.E, tools/libs/guest/xg_dom_x86.c:59 (MTRR_DEF_TYPE_ENABLE). */
  MTRR_DEF_TYPE_ENABLE: 1 << 11,
  /** xen/arch/x86/include/asm/msr-index.h:176-184: EFER_SCE, LME, LMA, NXE, SVME, FFXSE. */
  EFER_SCE: 1 << 0,
  EFER_LME: 1 << 8,
  EFER_LMA: 1 << 10,
  EFER_NXE: 1 << 11,
  EFER_SVME: 1 << 12,
  EFER_FFXSE: 1 << 14,
  /**
   * Segment attributes (struct segment_register's attr: type, S, DPL, P, AVL, L, D/B, G) of a
   * flat 32-bit code, data and TSS segment, as vcpu_hvm() sets them
   * (tools/libs/guest/xg_dom_x86.c:1063-1067).
   */
  FLAT_CODE32_ARBYTES: 0xc9b,
  FLAT_DATA32_ARBYTES: 0xc93,
  TSS32_BUSY_ARBYTES: 0x8b,
} as const;

/**
 * Every family above with the C prefix its header spells, for the probe in
 * test/typed-calls.test.ts. `cnames` gives the C name of a key that is spelled otherwise.
 */
export const VALUE_FAMILIES: readonly {
  readonly prefix: string;
  readonly header: string;
  readonly values: Readonly<Record<string, number>>;
  readonly cnames?: Readonly<Record<string, string>>;
}[] = [
  { prefix: 'XEN_SCHEDULER_', header: 'xen/domctl.h', values: XEN_SCHEDULER },
  { prefix: 'XEN_VCPUAFFINITY_', header: 'xen/domctl.h', values: XEN_VCPUAFFINITY },
  { prefix: 'XEN_INVALID_', header: 'xen/sysctl.h', values: XEN_INVALID },
  { prefix: 'HVM_PARAM_', header: 'xen/hvm/params.h', values: HVM_PARAM },
  { prefix: '', header: 'xen/hvm/params.h', values: { HVM_NR_PARAMS } },
  { prefix: 'HVM_FILE_', header: 'xen/hvm/save.h', values: HVM_FILE },
  { prefix: 'XEN_X86_EMU_', header: 'xen/xen.h', values: XEN_X86_EMU },
  { prefix: 'XEN_X86_', header: 'xen/xen.h', values: XEN_X86_MISC },
  { prefix: 'XEN_DOMCTL_GRANT_', header: 'xen/domctl.h', values: XEN_DOMCTL_GRANT },
  { prefix: 'XEN_ELFNOTE_', header: 'xen/elfnote.h', values: XEN_ELFNOTE },
  { prefix: 'SHUTDOWN_', header: 'xen/sched.h', values: SHUTDOWN },
  { prefix: 'X86_CR0_', header: 'asm/processor-flags.h', values: X86_CR0 },
  { prefix: 'X86_CR4_', header: 'asm/processor-flags.h', values: X86_CR4 },
  { prefix: '', header: 'asm/debugreg.h', values: { DR6: X86_DR_DEFAULT.DR6 }, cnames: { DR6: 'DR6_RESERVED' } },
  { prefix: 'MTRR_TYPE_', header: 'asm/mtrr.h', values: MTRR_TYPE },
];
