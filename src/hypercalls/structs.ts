// Argument struct layouts of Xen 4.17 on x86_64, field names exactly as in the public headers.
// Sizes and offsets are checked by test/abi-probe.test.ts against a C probe compiled with
// -D__XEN_TOOLS__ against Debian's libxen-dev; keep every layout here so the probe sees it.

import { array, bytes, cnamed, defineStruct, handle, i32, i64, struct, u16, u32, u64, u8 } from '../layout.js';

// ---- privcmd (Linux include/uapi/xen/privcmd.h) -------------------------------------------

export const privcmd_hypercall = defineStruct('struct privcmd_hypercall', 48, {
  op: u64(0),
  arg: array(8, 'u64', 5),
});

/**
 * IOCTL_PRIVCMD_MMAPBATCH_V2's argument: map `num` frames of domain `dom` at `addr` (the start of
 * an mmap of the privcmd fd). `arr` and `err` are user pointers (xen_pfn_t and int arrays); the
 * layout types them as handles because, like a guest handle, a C pointer is 8 bytes and not an
 * integer type, which is what the probe checks.
 */
export const privcmd_mmapbatch_v2 = defineStruct('struct privcmd_mmapbatch_v2', 32, {
  num: u32(0),
  dom: u16(4),
  addr: u64(8),
  arr: handle(16),
  err: handle(24),
});

/** IOCTL_PRIVCMD_MMAP_RESOURCE's argument: frames idx..idx+num-1 of resource (type, id) of `dom` at `addr`. */
export const privcmd_mmap_resource = defineStruct('struct privcmd_mmap_resource', 32, {
  dom: u16(0),
  type: u32(4),
  id: u32(8),
  idx: u32(12),
  num: u64(16),
  addr: u64(24),
});

// ---- domctl ---------------------------------------------------------------------------------

/** The envelope of every domctl; the sub-op's struct sits in `u` at offset 16. */
export const xen_domctl = defineStruct('struct xen_domctl', 144, {
  cmd: u32(0),
  interface_version: u32(4),
  domain: u16(8),
  u: bytes(16, 128),
});
export const DOMCTL_PAYLOAD_OFFSET = 16;

export const xen_arch_domainconfig = defineStruct('struct xen_arch_domainconfig', 8, {
  emulation_flags: u32(0),
  misc_flags: u32(4),
});

export const xen_domctl_createdomain = defineStruct('struct xen_domctl_createdomain', 64, {
  ssidref: u32(0),
  handle: bytes(4, 16),
  flags: u32(20),
  iommu_opts: u32(24),
  max_vcpus: u32(28),
  max_evtchn_port: u32(32),
  max_grant_frames: i32(36),
  max_maptrack_frames: i32(40),
  grant_opts: u32(44),
  vmtrace_size: u32(48),
  cpupool_id: u32(52),
  arch: struct(56, xen_arch_domainconfig),
});

export const xen_domctl_getdomaininfo = defineStruct('struct xen_domctl_getdomaininfo', 112, {
  domain: u16(0),
  flags: u32(4),
  tot_pages: u64(8),
  max_pages: u64(16),
  outstanding_pages: u64(24),
  shr_pages: u64(32),
  paged_pages: u64(40),
  shared_info_frame: u64(48),
  cpu_time: u64(56),
  nr_online_vcpus: u32(64),
  max_vcpu_id: u32(68),
  ssidref: u32(72),
  handle: bytes(76, 16),
  cpupool: u32(92),
  gpaddr_bits: u8(96),
  arch_config: struct(104, xen_arch_domainconfig),
});

export const xen_domctl_shadow_op_stats = defineStruct('struct xen_domctl_shadow_op_stats', 8, {
  fault_count: u32(0),
  dirty_count: u32(4),
});

export const xen_domctl_shadow_op = defineStruct('struct xen_domctl_shadow_op', 40, {
  op: u32(0),
  mode: u32(4),
  mb: u32(8),
  dirty_bitmap: handle(16),
  pages: u64(24),
  stats: struct(32, xen_domctl_shadow_op_stats),
});

export const xen_domctl_setdomainhandle = defineStruct('struct xen_domctl_setdomainhandle', 16, { handle: bytes(0, 16) });
export const xen_domctl_max_mem = defineStruct('struct xen_domctl_max_mem', 8, { max_memkb: u64(0) });
export const xen_domctl_max_vcpus = defineStruct('struct xen_domctl_max_vcpus', 4, { max: u32(0) });

export const xenctl_bitmap = defineStruct('struct xenctl_bitmap', 16, { bitmap: handle(0), nr_bits: u32(8) });

export const xen_domctl_vcpuaffinity = defineStruct('struct xen_domctl_vcpuaffinity', 40, {
  vcpu: u32(0),
  flags: u32(4),
  cpumap_hard: struct(8, xenctl_bitmap),
  cpumap_soft: struct(24, xenctl_bitmap),
});

export const xen_domctl_getvcpuinfo = defineStruct('struct xen_domctl_getvcpuinfo', 24, {
  vcpu: u32(0),
  online: u8(4),
  blocked: u8(5),
  running: u8(6),
  cpu_time: u64(8),
  cpu: u32(16),
});

export const xen_domctl_vcpucontext = defineStruct('struct xen_domctl_vcpucontext', 16, {
  vcpu: u32(0),
  ctxt: handle(8),
});

export const xen_domctl_hvmcontext = defineStruct('struct xen_domctl_hvmcontext', 16, {
  size: u32(0),
  buffer: handle(8),
});

export const xen_domctl_settimeoffset = defineStruct('struct xen_domctl_settimeoffset', 8, {
  time_offset_seconds: i64(0),
});

export const xen_domctl_getpageframeinfo3 = defineStruct('struct xen_domctl_getpageframeinfo3', 16, {
  num: u64(0),
  array: handle(8),
});

// ---- sysctl ---------------------------------------------------------------------------------

/** The envelope of every sysctl; the sub-op's struct sits in `u` at offset 8. */
export const xen_sysctl = defineStruct('struct xen_sysctl', 136, {
  cmd: u32(0),
  interface_version: u32(4),
  u: bytes(8, 128),
});
export const SYSCTL_PAYLOAD_OFFSET = 8;

export const xen_sysctl_readconsole = defineStruct('struct xen_sysctl_readconsole', 24, {
  clear: u8(0),
  incremental: u8(1),
  pad0: u8(2),
  pad1: u8(3),
  index: u32(4),
  buffer: handle(8),
  count: u32(16),
});

export const xen_sysctl_physinfo = defineStruct('struct xen_sysctl_physinfo', 112, {
  threads_per_core: u32(0),
  cores_per_socket: u32(4),
  nr_cpus: u32(8),
  max_cpu_id: u32(12),
  nr_nodes: u32(16),
  max_node_id: u32(20),
  cpu_khz: u32(24),
  capabilities: u32(28),
  arch_capabilities: u32(32),
  pad: u32(36),
  total_pages: u64(40),
  free_pages: u64(48),
  scrub_pages: u64(56),
  outstanding_pages: u64(64),
  max_mfn: u64(72),
  hw_cap: array(80, 'u32', 8),
});

export const xen_sysctl_getdomaininfolist = defineStruct('struct xen_sysctl_getdomaininfolist', 24, {
  first_domain: u16(0),
  max_domains: u32(4),
  buffer: handle(8),
  num_domains: u32(16),
});

export const xen_sysctl_sched_id = defineStruct('struct xen_sysctl_sched_id', 4, { sched_id: u32(0) });

// ---- memory_op ------------------------------------------------------------------------------

export const xen_memory_domain = defineStruct('struct xen_memory_domain', 2, { domid: u16(0) });

export const xen_memory_reservation = defineStruct('struct xen_memory_reservation', 32, {
  extent_start: handle(0),
  nr_extents: u64(8),
  extent_order: u32(16),
  mem_flags: u32(20),
  domid: u16(24),
});

// ---- xen_version ----------------------------------------------------------------------------

export const xen_compile_info = defineStruct('struct xen_compile_info', 144, {
  compiler: bytes(0, 64),
  compile_by: bytes(64, 16),
  compile_domain: bytes(80, 32),
  compile_date: bytes(112, 32),
});
export const xen_feature_info = defineStruct('struct xen_feature_info', 8, { submap_idx: u32(0), submap: u32(4) });
export const xen_platform_parameters = defineStruct('struct xen_platform_parameters', 8, { virt_start: u64(0) });

/** Fixed-size string types of version.h (their sizeof is probed too). */
export const XEN_VERSION_STRING_SIZES = {
  xen_extraversion_t: 16,
  xen_capabilities_info_t: 1024,
  xen_changeset_info_t: 64,
  xen_commandline_t: 1024,
} as const;

// ---- event_channel_op -----------------------------------------------------------------------

export const evtchn_alloc_unbound = defineStruct('struct evtchn_alloc_unbound', 8, {
  dom: u16(0),
  remote_dom: u16(2),
  port: u32(4),
});
export const evtchn_close = defineStruct('struct evtchn_close', 4, { port: u32(0) });
export const evtchn_send = defineStruct('struct evtchn_send', 4, { port: u32(0) });
export const evtchn_status = defineStruct('struct evtchn_status', 24, {
  dom: u16(0),
  port: u32(4),
  status: u32(8),
  vcpu: u32(12),
  // The union `u`: the remote domain of an unbound or interdomain port, the peer's port.
  remote_dom: cnamed(u16(16), 'u.interdomain.dom'),
  remote_port: cnamed(u32(20), 'u.interdomain.port'),
});

// ---- layouts read by per-mode rows and conditions (rows/*.ts) -------------------------------

export const xen_domctl_vm_event_op = defineStruct('struct xen_domctl_vm_event_op', 12, {
  op: u32(0),
  mode: u32(4),
  port: cnamed(u32(8), 'u.enable.port'),
});

export const xen_domctl_monitor_op = defineStruct('struct xen_domctl_monitor_op', 24, {
  op: u32(0),
  event: u32(4),
});

export const xen_domctl_vmtrace_op = defineStruct('struct xen_domctl_vmtrace_op', 24, {
  cmd: u32(0),
  vcpu: u32(4),
  key: u64(8),
  value: u64(16),
});

export const xen_sysctl_tbuf_op = defineStruct('struct xen_sysctl_tbuf_op', 48, {
  cmd: u32(0),
  cpu_mask: struct(8, xenctl_bitmap),
  evt_mask: u32(24),
  buffer_mfn: u64(32),
  size: u32(40),
});

export const xen_sysctl_perfc_op = defineStruct('struct xen_sysctl_perfc_op', 32, {
  cmd: u32(0),
  nr_counters: u32(4),
  nr_vals: u32(8),
  desc: handle(16),
  val: handle(24),
});

export const xen_sysctl_debug_keys = defineStruct('struct xen_sysctl_debug_keys', 16, {
  keys: handle(0),
  nr_keys: u32(8),
});

export const xen_sysctl_pm_op = defineStruct('struct xen_sysctl_pm_op', 128, {
  cmd: u32(0),
  cpuid: u32(4),
});

export const xen_sysctl_cpupool_op = defineStruct('struct xen_sysctl_cpupool_op', 40, {
  op: u32(0),
  cpupool_id: u32(4),
  sched_id: u32(8),
  domid: u32(12),
  cpu: u32(16),
  n_dom: u32(20),
  cpumap: struct(24, xenctl_bitmap),
});

export const xen_sysctl_livepatch_op = defineStruct('struct xen_sysctl_livepatch_op', 72, {
  cmd: u32(0),
  pad: u32(4),
});

export const xen_add_to_physmap = defineStruct('struct xen_add_to_physmap', 24, {
  domid: u16(0),
  size: u16(2),
  space: u32(4),
  idx: u64(8),
  gpfn: u64(16),
});

export const xen_add_to_physmap_batch = defineStruct('struct xen_add_to_physmap_batch', 32, {
  domid: u16(0),
  space: u16(2),
  size: u16(4),
  foreign_domid: cnamed(u16(6), 'u.foreign_domid'),
  idxs: handle(8),
  gpfns: handle(16),
  errs: handle(24),
});

export const xen_mem_paging_op = defineStruct('struct xen_mem_paging_op', 24, {
  op: u8(0),
  domain: u16(2),
  buffer: handle(8),
  gfn: u64(16),
});

export const xen_hvm_altp2m_op = defineStruct('struct xen_hvm_altp2m_op', 80, {
  version: u32(0),
  cmd: u32(4),
  domain: u16(8),
  pad1: u16(10),
  pad2: u32(12),
});

export const physdev_map_pirq = defineStruct('struct physdev_map_pirq', 40, {
  domid: u16(0),
  type: i32(4),
  index: i32(8),
  pirq: i32(12),
  bus: i32(16),
  devfn: i32(20),
  entry_nr: i32(24),
  table_base: u64(32),
});

// ---- typed sysctl calls: cpu, topology and numa information --------------------------------

export const xen_sysctl_cpuinfo = defineStruct('struct xen_sysctl_cpuinfo', 8, { idletime: u64(0) });

export const xen_sysctl_getcpuinfo = defineStruct('struct xen_sysctl_getcpuinfo', 24, {
  max_cpus: u32(0),
  info: handle(8),
  nr_cpus: u32(16),
});

export const xen_sysctl_cputopo = defineStruct('struct xen_sysctl_cputopo', 12, {
  core: u32(0),
  socket: u32(4),
  node: u32(8),
});

export const xen_sysctl_cputopoinfo = defineStruct('struct xen_sysctl_cputopoinfo', 16, {
  num_cpus: u32(0),
  cputopo: handle(8),
});

export const xen_sysctl_meminfo = defineStruct('struct xen_sysctl_meminfo', 16, { memsize: u64(0), memfree: u64(8) });

export const xen_sysctl_numainfo = defineStruct('struct xen_sysctl_numainfo', 24, {
  num_nodes: u32(0),
  meminfo: handle(8),
  distance: handle(16),
});

// ---- hvm_op ----------------------------------------------------------------------------------

export const xen_hvm_param = defineStruct('struct xen_hvm_param', 16, {
  domid: u16(0),
  pad: u16(2),
  index: u32(4),
  value: u64(8),
});

// ---- vcpu context (arch-x86/xen-x86_64.h, arch-x86/xen.h) -------------------------------------

/** The x86_64 register frame; rip/rsp/... are members of anonymous unions with their 32-bit names. */
export const cpu_user_regs = defineStruct('struct cpu_user_regs', 200, {
  r15: u64(0),
  r14: u64(8),
  r13: u64(16),
  r12: u64(24),
  rbp: u64(32),
  rbx: u64(40),
  r11: u64(48),
  r10: u64(56),
  r9: u64(64),
  r8: u64(72),
  rax: u64(80),
  rcx: u64(88),
  rdx: u64(96),
  rsi: u64(104),
  rdi: u64(112),
  error_code: u32(120),
  entry_vector: u32(124),
  rip: u64(128),
  cs: u16(136),
  saved_upcall_mask: u8(140),
  rflags: u64(144),
  rsp: u64(152),
  ss: u16(160),
  es: u16(168),
  ds: u16(176),
  fs: u16(184),
  gs: u16(192),
});

/**
 * The native (x86_64) vcpu_guest_context XEN_DOMCTL_getvcpucontext copies out for a 64-bit
 * guest: the same 5168 bytes as foreign/x86_64.h's vcpu_guest_context_x86_64_t. The FPU area
 * (0..511) and the virtual IDT trap_ctxt[256] (720..4815) are left undecoded.
 */
export const vcpu_guest_context = defineStruct('struct vcpu_guest_context', 5168, {
  flags: u64(512),
  user_regs: struct(520, cpu_user_regs),
  ldt_base: u64(4816),
  ldt_ents: u64(4824),
  gdt_frames: array(4832, 'u64', 16),
  gdt_ents: u64(4960),
  kernel_ss: u64(4968),
  kernel_sp: u64(4976),
  ctrlreg: array(4984, 'u64', 8),
  debugreg: array(5048, 'u64', 8),
  event_callback_eip: u64(5112),
  failsafe_callback_eip: u64(5120),
  syscall_callback_eip: u64(5128),
  vm_assist: u64(5136),
  fs_base: u64(5144),
  gs_base_kernel: u64(5152),
  gs_base_user: u64(5160),
});

// ---- HVM save records (public/hvm/save.h, public/arch-x86/hvm/save.h) -------------------------
// An HVM context (domctl gethvmcontext/sethvmcontext) is a stream of records, each a descriptor
// followed by `length` bytes: HEADER first, END last (hvm_save/hvm_load, xen/arch/x86/hvm/save.c).

export const hvm_save_descriptor = defineStruct('struct hvm_save_descriptor', 8, {
  typecode: u16(0),
  instance: u16(2),
  length: u32(4),
});

export const hvm_save_header = defineStruct('struct hvm_save_header', 24, {
  magic: u32(0),
  version: u32(4),
  changeset: u64(8),
  cpuid: u32(16),
  gtsc_khz: u32(20),
});

/**
 * One vcpu's register state: HVM_SAVE_TYPE(CPU). The FPU area is kept as bytes; the pending
 * event's bitfields are read through their union's `pending_event` word.
 */
export const hvm_hw_cpu = defineStruct('struct hvm_hw_cpu', 1032, {
  fpu_regs: bytes(0, 512),
  rax: u64(512),
  rbx: u64(520),
  rcx: u64(528),
  rdx: u64(536),
  rbp: u64(544),
  rsi: u64(552),
  rdi: u64(560),
  rsp: u64(568),
  r8: u64(576),
  r9: u64(584),
  r10: u64(592),
  r11: u64(600),
  r12: u64(608),
  r13: u64(616),
  r14: u64(624),
  r15: u64(632),
  rip: u64(640),
  rflags: u64(648),
  cr0: u64(656),
  cr2: u64(664),
  cr3: u64(672),
  cr4: u64(680),
  dr0: u64(688),
  dr1: u64(696),
  dr2: u64(704),
  dr3: u64(712),
  dr6: u64(720),
  dr7: u64(728),
  cs_sel: u32(736),
  ds_sel: u32(740),
  es_sel: u32(744),
  fs_sel: u32(748),
  gs_sel: u32(752),
  ss_sel: u32(756),
  tr_sel: u32(760),
  ldtr_sel: u32(764),
  cs_limit: u32(768),
  ds_limit: u32(772),
  es_limit: u32(776),
  fs_limit: u32(780),
  gs_limit: u32(784),
  ss_limit: u32(788),
  tr_limit: u32(792),
  ldtr_limit: u32(796),
  idtr_limit: u32(800),
  gdtr_limit: u32(804),
  cs_base: u64(808),
  ds_base: u64(816),
  es_base: u64(824),
  fs_base: u64(832),
  gs_base: u64(840),
  ss_base: u64(848),
  tr_base: u64(856),
  ldtr_base: u64(864),
  idtr_base: u64(872),
  gdtr_base: u64(880),
  cs_arbytes: u32(888),
  ds_arbytes: u32(892),
  es_arbytes: u32(896),
  fs_arbytes: u32(900),
  gs_arbytes: u32(904),
  ss_arbytes: u32(908),
  tr_arbytes: u32(912),
  ldtr_arbytes: u32(916),
  sysenter_cs: u64(920),
  sysenter_esp: u64(928),
  sysenter_eip: u64(936),
  shadow_gs: u64(944),
  msr_flags: u64(952),
  msr_lstar: u64(960),
  msr_star: u64(968),
  msr_cstar: u64(976),
  msr_syscall_mask: u64(984),
  msr_efer: u64(992),
  msr_tsc_aux: u64(1000),
  tsc: u64(1008),
  pending_event: u32(1016),
  error_code: u32(1020),
  flags: u32(1024),
  pad0: u32(1028),
});

/** One vcpu's MTRR and PAT MSRs: HVM_SAVE_TYPE(MTRR). */
export const hvm_hw_mtrr = defineStruct('struct hvm_hw_mtrr', 240, {
  msr_pat_cr: u64(0),
  msr_mtrr_var: array(8, 'u64', 16),
  msr_mtrr_fixed: array(136, 'u64', 11),
  msr_mtrr_cap: u64(224),
  msr_mtrr_def_type: u64(232),
});

/**
 * The record types an x86 PVH domain's context holds (what hvm_save writes for one, measured on
 * Xen 4.17.7), each with HVM_SAVE_CODE(type) and HVM_SAVE_LENGTH(type), and whether it is saved
 * once per vcpu (HVMSR_PER_VCPU) or once per domain. The ABI probe checks code and length.
 */
export const HVM_SAVE_TYPES = {
  END: { code: 0, length: 0, perVcpu: false },
  HEADER: { code: 1, length: 24, perVcpu: false },
  CPU: { code: 2, length: 1032, perVcpu: true },
  LAPIC: { code: 5, length: 24, perVcpu: true },
  LAPIC_REGS: { code: 6, length: 1024, perVcpu: true },
  PCI_IRQ: { code: 7, length: 16, perVcpu: false },
  ISA_IRQ: { code: 8, length: 8, perVcpu: false },
  PCI_LINK: { code: 9, length: 8, perVcpu: false },
  MTRR: { code: 14, length: 240, perVcpu: true },
  VMCE_VCPU: { code: 18, length: 32, perVcpu: true },
  TSC_ADJUST: { code: 19, length: 8, perVcpu: true },
} as const;

/** HVM_SAVE_CODE_MAX (arch-x86/hvm/save.h): hvm_load refuses typecodes above it (-EINVAL). */
export const HVM_SAVE_CODE_MAX = 20;
