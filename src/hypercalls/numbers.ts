// Hypercall and sub-op numbers of Xen 4.17 (x86_64), from the public headers Debian's
// libxen-dev installs (xen.h, domctl.h, sysctl.h, memory.h, version.h, event_channel.h,
// grant_table.h, sched.h, hvm/hvm_op.h, physdev.h, hvm/dm_op.h). test/abi-probe.test.ts
// prints every one of them from a compiled C probe and fails on any difference.
// Names keep Xen's spelling without the prefix named in each comment.

/** __HYPERVISOR_* */
export const HYPERCALL = {
  set_trap_table: 0,
  mmu_update: 1,
  set_gdt: 2,
  stack_switch: 3,
  set_callbacks: 4,
  fpu_taskswitch: 5,
  sched_op_compat: 6,
  platform_op: 7,
  set_debugreg: 8,
  get_debugreg: 9,
  update_descriptor: 10,
  memory_op: 12,
  multicall: 13,
  update_va_mapping: 14,
  set_timer_op: 15,
  event_channel_op_compat: 16,
  xen_version: 17,
  console_io: 18,
  physdev_op_compat: 19,
  grant_table_op: 20,
  vm_assist: 21,
  update_va_mapping_otherdomain: 22,
  iret: 23,
  vcpu_op: 24,
  set_segment_base: 25,
  mmuext_op: 26,
  xsm_op: 27,
  nmi_op: 28,
  sched_op: 29,
  callback_op: 30,
  xenoprof_op: 31,
  event_channel_op: 32,
  physdev_op: 33,
  hvm_op: 34,
  sysctl: 35,
  domctl: 36,
  kexec_op: 37,
  tmem_op: 38,
  argo_op: 39,
  xenpmu_op: 40,
  dm_op: 41,
  hypfs_op: 42,
  arch_0: 48,
  arch_1: 49,
  arch_2: 50,
  arch_3: 51,
  arch_4: 52,
  arch_5: 53,
  arch_6: 54,
  arch_7: 55,
} as const;

/** XEN_DOMCTL_* */
export const DOMCTL = {
  createdomain: 1,
  destroydomain: 2,
  pausedomain: 3,
  unpausedomain: 4,
  getdomaininfo: 5,
  setvcpuaffinity: 9,
  shadow_op: 10,
  max_mem: 11,
  setvcpucontext: 12,
  getvcpucontext: 13,
  getvcpuinfo: 14,
  max_vcpus: 15,
  scheduler_op: 16,
  setdomainhandle: 17,
  setdebugging: 18,
  irq_permission: 19,
  iomem_permission: 20,
  ioport_permission: 21,
  hypercall_init: 22,
  soft_reset_cont: 23,
  settimeoffset: 24,
  getvcpuaffinity: 25,
  real_mode_area: 26,
  resumedomain: 27,
  sendtrigger: 28,
  subscribe: 29,
  gethvmcontext: 33,
  sethvmcontext: 34,
  set_address_size: 35,
  get_address_size: 36,
  assign_device: 37,
  bind_pt_irq: 38,
  memory_mapping: 39,
  ioport_mapping: 40,
  set_ext_vcpucontext: 42,
  get_ext_vcpucontext: 43,
  set_opt_feature: 44,
  test_assign_device: 45,
  set_target: 46,
  deassign_device: 47,
  unbind_pt_irq: 48,
  get_device_group: 50,
  debug_op: 54,
  gethvmcontext_partial: 55,
  vm_event_op: 56,
  mem_sharing_op: 57,
  gettscinfo: 59,
  settscinfo: 60,
  getpageframeinfo3: 61,
  setvcpuextstate: 62,
  getvcpuextstate: 63,
  set_access_required: 64,
  audit_p2m: 65,
  set_virq_handler: 66,
  set_broken_page_p2m: 67,
  setnodeaffinity: 68,
  getnodeaffinity: 69,
  cacheflush: 71,
  get_vcpu_msrs: 72,
  set_vcpu_msrs: 73,
  setvnumainfo: 74,
  psr_cmt_op: 75,
  monitor_op: 77,
  psr_alloc: 78,
  soft_reset: 79,
  vuart_op: 81,
  get_cpu_policy: 82,
  set_cpu_policy: 83,
  vmtrace_op: 84,
  get_paging_mempool_size: 85,
  set_paging_mempool_size: 86,
  gdbsx_guestmemio: 1000,
  gdbsx_pausevcpu: 1001,
  gdbsx_unpausevcpu: 1002,
  gdbsx_domstatus: 1003,
} as const;

/** XEN_SYSCTL_* */
export const SYSCTL = {
  readconsole: 1,
  tbuf_op: 2,
  physinfo: 3,
  sched_id: 4,
  perfc_op: 5,
  getdomaininfolist: 6,
  debug_keys: 7,
  getcpuinfo: 8,
  availheap: 9,
  get_pmstat: 10,
  cpu_hotplug: 11,
  pm_op: 12,
  page_offline_op: 14,
  lockprof_op: 15,
  cputopoinfo: 16,
  numainfo: 17,
  cpupool_op: 18,
  scheduler_op: 19,
  coverage_op: 20,
  psr_cmt_op: 21,
  pcitopoinfo: 22,
  psr_alloc: 23,
  get_cpu_levelling_caps: 25,
  get_cpu_featureset: 26,
  livepatch_op: 27,
  get_cpu_policy: 29,
} as const;

/** XENMEM_* */
export const XENMEM = {
  increase_reservation: 0,
  decrease_reservation: 1,
  populate_physmap: 6,
  exchange: 11,
  maximum_ram_page: 2,
  current_reservation: 3,
  maximum_reservation: 4,
  maximum_gpfn: 14,
  machphys_mfn_list: 5,
  machphys_compat_mfn_list: 25,
  machphys_mapping: 12,
  add_to_physmap: 7,
  add_to_physmap_batch: 23,
  remove_from_physmap: 15,
  memory_map: 9,
  machine_memory_map: 10,
  set_memory_map: 13,
  set_pod_target: 16,
  get_pod_target: 17,
  get_sharing_freed_pages: 18,
  get_sharing_shared_pages: 19,
  paging_op: 20,
  access_op: 21,
  sharing_op: 22,
  claim_pages: 24,
  reserved_device_memory_map: 27,
  acquire_resource: 28,
  get_vnumainfo: 26,
} as const;

/** XENMEM_resource_*: the resource types XENMEM_acquire_resource (and IOCTL_PRIVCMD_MMAP_RESOURCE) maps. */
export const XENMEM_RESOURCE = {
  ioreq_server: 0,
  grant_table: 1,
  vmtrace_buf: 2,
} as const;

/** XENMEM_resource_grant_table_id_*: which part of a grant table XENMEM_resource_grant_table maps. */
export const XENMEM_RESOURCE_GRANT_TABLE_ID = {
  shared: 0,
  status: 1,
} as const;

/** XENVER_* */
export const XENVER = {
  version: 0,
  extraversion: 1,
  compile_info: 2,
  capabilities: 3,
  changeset: 4,
  platform_parameters: 5,
  get_features: 6,
  pagesize: 7,
  guest_handle: 8,
  commandline: 9,
  build_id: 10,
} as const;

/** EVTCHNOP_* */
export const EVTCHNOP = {
  bind_interdomain: 0,
  bind_virq: 1,
  bind_pirq: 2,
  close: 3,
  send: 4,
  status: 5,
  alloc_unbound: 6,
  bind_ipi: 7,
  bind_vcpu: 8,
  unmask: 9,
  reset: 10,
  init_control: 11,
  expand_array: 12,
  set_priority: 13,
  reset_cont: 14,
} as const;

/** GNTTABOP_* */
export const GNTTABOP = {
  map_grant_ref: 0,
  unmap_grant_ref: 1,
  setup_table: 2,
  dump_table: 3,
  transfer: 4,
  copy: 5,
  query_size: 6,
  unmap_and_replace: 7,
  set_version: 8,
  get_status_frames: 9,
  get_version: 10,
  swap_grant_ref: 11,
  cache_flush: 12,
} as const;

/** SCHEDOP_* */
export const SCHEDOP = {
  yield: 0,
  block: 1,
  shutdown: 2,
  poll: 3,
  remote_shutdown: 4,
  shutdown_code: 5,
  watchdog: 6,
  pin_override: 7,
} as const;

/** HVMOP_* */
export const HVMOP = {
  set_param: 0,
  get_param: 1,
  set_pci_intx_level: 2,
  set_isa_irq_level: 3,
  set_pci_link_route: 4,
  flush_tlbs: 5,
  pagetable_dying: 9,
  get_time: 10,
  xentrace: 11,
  set_mem_access: 12,
  get_mem_access: 13,
  get_mem_type: 15,
  set_evtchn_upcall_vector: 23,
  guest_request_vm_event: 24,
  altp2m: 25,
} as const;

/** PHYSDEVOP_* */
export const PHYSDEVOP = {
  eoi: 12,
  pirq_eoi_gmfn_v1: 17,
  pirq_eoi_gmfn_v2: 28,
  irq_status_query: 5,
  set_iopl: 6,
  set_iobitmap: 7,
  apic_read: 8,
  apic_write: 9,
  alloc_irq_vector: 10,
  free_irq_vector: 11,
  map_pirq: 13,
  unmap_pirq: 14,
  manage_pci_add: 15,
  manage_pci_remove: 16,
  restore_msi: 19,
  manage_pci_add_ext: 20,
  setup_gsi: 21,
  get_free_pirq: 23,
  pci_mmcfg_reserved: 24,
  pci_device_add: 25,
  pci_device_remove: 26,
  restore_msi_ext: 27,
  prepare_msix: 30,
  release_msix: 31,
  dbgp_op: 29,
  IRQ_UNMASK_NOTIFY: 4,
} as const;

/** XEN_DMOP_* */
export const DMOP = {
  create_ioreq_server: 1,
  get_ioreq_server_info: 2,
  map_io_range_to_ioreq_server: 3,
  unmap_io_range_from_ioreq_server: 4,
  set_ioreq_server_state: 5,
  destroy_ioreq_server: 6,
  track_dirty_vram: 7,
  set_pci_intx_level: 8,
  set_isa_irq_level: 9,
  set_pci_link_route: 10,
  modified_memory: 11,
  set_mem_type: 12,
  inject_event: 13,
  inject_msi: 14,
  map_mem_type_to_ioreq_server: 15,
  remote_shutdown: 16,
  relocate_memory: 17,
  pin_memory_cacheattr: 18,
  set_irq_level: 19,
  nr_vcpus: 20,
} as const;

/** CONSOLEIO_* */
export const CONSOLEIO = {
  write: 0,
  read: 1,
} as const;

/** XEN_DOMCTL_SHADOW_OP_* */
export const SHADOW_OP = {
  OFF: 0,
  ENABLE: 32,
  CLEAN: 11,
  PEEK: 12,
  GET_ALLOCATION: 30,
  SET_ALLOCATION: 31,
  ENABLE_TEST: 1,
  ENABLE_LOGDIRTY: 2,
  ENABLE_TRANSLATE: 3,
} as const;
/**
 * xen_domctl_shadow_op.mode bits (XEN_DOMCTL_SHADOW_*): the ENABLE_* ones go with
 * XEN_DOMCTL_SHADOW_OP_ENABLE; LOGDIRTY_FINAL is CLEAN's and PEEK's only mode bit (paging_domctl
 * answers -EINVAL to any other), asking Xen to mark the frames it keeps mapped writable.
 */
export const XEN_DOMCTL_SHADOW = {
  ENABLE_REFCOUNT: 1 << 1,
  ENABLE_LOG_DIRTY: 1 << 2,
  ENABLE_TRANSLATE: 1 << 3,
  ENABLE_EXTERNAL: 1 << 4,
  LOGDIRTY_FINAL: 1 << 0,
} as const;
/** Interface versions checked by Xen on every domctl and sysctl (-EACCES when they differ). */
export const XEN_DOMCTL_INTERFACE_VERSION = 0x00000015;
export const XEN_SYSCTL_INTERFACE_VERSION = 0x00000015;

/** xen.h: ordinary domain ids are below DOMID_FIRST_RESERVED. */
export const DOMID = {
  FIRST_RESERVED: 0x7ff0,
  SELF: 0x7ff0,
  IO: 0x7ff1,
  XEN: 0x7ff2,
  COW: 0x7ff3,
  INVALID: 0x7ff4,
  IDLE: 0x7fff,
} as const;

/** domctl.h: xen_domctl_getdomaininfo.flags bits. */
export const XEN_DOMINF = {
  dying: 1 << 0,
  hvm_guest: 1 << 1,
  shutdown: 1 << 2,
  paused: 1 << 3,
  blocked: 1 << 4,
  running: 1 << 5,
  debugged: 1 << 6,
  xs_domain: 1 << 7,
  hap: 1 << 8,
  shutdownmask: 255,
  shutdownshift: 16,
} as const;

/** domctl.h: xen_domctl_createdomain.flags bits. */
export const XEN_DOMCTL_CDF = {
  hvm: 1 << 0,
  hap: 1 << 1,
  s3_integrity: 1 << 2,
  oos_off: 1 << 3,
  xs_domain: 1 << 4,
  iommu: 1 << 5,
  nested_virt: 1 << 6,
  vpmu: 1 << 7,
} as const;

/** sysctl.h: xen_sysctl_physinfo.capabilities bits (what this hypervisor can run). */
export const XEN_SYSCTL_PHYSCAP = {
  hvm: 1 << 0,
  pv: 1 << 1,
  directio: 1 << 2,
  hap: 1 << 3,
  shadow: 1 << 4,
  iommu_hap_pt_share: 1 << 5,
  vmtrace: 1 << 6,
  vpmu: 1 << 7,
  gnttab_v1: 1 << 8,
  gnttab_v2: 1 << 9,
} as const;

/** domctl.h: page types getpageframeinfo3 writes over each gfn. */
export const XEN_DOMCTL_PFINFO = {
  LTAB_SHIFT: 28,
  NOTAB: 0x0 << 28,
  L1TAB: 0x1 << 28,
  L2TAB: 0x2 << 28,
  L3TAB: 0x3 << 28,
  L4TAB: 0x4 << 28,
  LTABTYPE_MASK: 0x7 << 28,
  LPINTAB: 0x80000000,
  XTAB: 0xf0000000,
  XALLOC: 0xe0000000,
  BROKEN: 0xd0000000,
  LTAB_MASK: 0xf0000000,
} as const;

/**
 * memory_op's cmd carries the op in its low bits and a continuation start above. Not in the
 * public headers: Xen's own xen/include/xen/hypercall.h defines them (and says they are not a
 * formal part of the interface); test/abi-probe.test.ts pins the values.
 */
export const MEMOP_EXTENT_SHIFT = 6;
export const MEMOP_CMD_MASK = (1 << MEMOP_EXTENT_SHIFT) - 1;

/** event_channel.h: evtchn_status.status values. */
export const EVTCHNSTAT = {
  closed: 0,
  unbound: 1,
  interdomain: 2,
  pirq: 3,
  virq: 4,
  ipi: 5,
} as const;

/** The hypervisor's page size on x86, and so the granularity of hypercall buffers. */
export const XEN_PAGE_SIZE = 4096;
