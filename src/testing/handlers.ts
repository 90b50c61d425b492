// The mock hypervisor's hypercall handlers. Each follows the order of Xen 4.17's own code
// (RELEASE-4.17.7): copy the argument struct in, check, act, copy results out. That order is
// the whole point: an injected copy fault must land before or after the side effect exactly
// where Xen's would. Comments name the Xen function each handler mirrors.

import { errnoNumber } from '../errors.js';
import { decode, encode } from '../layout.js';
import {
  DOMCTL,
  DOMID,
  EVTCHNOP,
  HYPERCALL,
  MEMOP_CMD_MASK,
  MEMOP_EXTENT_SHIFT,
  SHADOW_OP,
  SYSCTL,
  XENMEM,
  XENVER,
  XEN_DOMCTL_INTERFACE_VERSION,
  XEN_DOMCTL_CDF,
  XEN_DOMINF,
  XEN_SYSCTL_INTERFACE_VERSION,
  EVTCHNSTAT,
} from '../hypercalls/numbers.js';
import {
  DOMCTL_PAYLOAD_OFFSET,
  evtchn_alloc_unbound,
  evtchn_close,
  evtchn_send,
  evtchn_status,
  SYSCTL_PAYLOAD_OFFSET,
  vcpu_guest_context,
  xen_compile_info,
  xen_domctl,
  xen_domctl_createdomain,
  xen_domctl_getdomaininfo,
  xen_domctl_getpageframeinfo3,
  xen_domctl_getvcpuinfo,
  xen_domctl_hvmcontext,
  xen_domctl_max_mem,
  xen_domctl_setdomainhandle,
  xen_domctl_max_vcpus,
  xen_domctl_settimeoffset,
  xen_domctl_vcpuaffinity,
  xen_domctl_vcpucontext,
  xen_feature_info,
  xen_hvm_param,
  xen_memory_reservation,
  xen_platform_parameters,
  xen_sysctl,
  xen_sysctl_cputopoinfo,
  xen_sysctl_getcpuinfo,
  xen_sysctl_getdomaininfolist,
  xen_sysctl_numainfo,
  xen_sysctl_physinfo,
  xen_sysctl_readconsole,
  XEN_VERSION_STRING_SIZES,
  xenctl_bitmap,
} from '../hypercalls/structs.js';
import { HVMOP } from '../hypercalls/numbers.js';
import { HVM_NR_PARAMS, HVM_PARAM, XEN_DOMCTL_GRANT, XEN_VCPUAFFINITY, XEN_X86_EMU, XEN_X86_MISC } from '../hypercalls/values.js';
import type { Decoded } from '../layout.js';
import type { MockHypervisor } from './hypervisor.js';
import { DEFAULT_MAX_GRANT_FRAMES, MAX_CONTROLLER_PAUSE_COUNT, MockDomain, vcpuContextFor } from './world.js';
import { pagingDomctl, pagingDomctlCont } from './paging.js';

const E = (name: string): bigint => -BigInt(errnoNumber(name));
const OK = 0n;
/** What a handler returns when it made a continuation: the caller never sees it (hypercall() goes on). */
const RESTARTED = E('ERESTART');

/** Reverse lookups of the number tables, built once per table (dispatch runs on every call). */
const reverse = new WeakMap<object, Map<number, string>>();
function nameOf(table: Record<string, number>, value: number): string | undefined {
  let m = reverse.get(table);
  if (!m) {
    m = new Map();
    for (const [k, v] of Object.entries(table)) if (!m.has(v)) m.set(v, k);
    reverse.set(table, m);
  }
  return m.get(value);
}

/**
 * Handles one hypercall entry. `continuation` marks a re-execution Xen asked for
 * (hypercall_create_continuation): the caller made one call; the history shows each entry.
 */
export function dispatch(hv: MockHypervisor, op: number, args: readonly bigint[], continuation: boolean): bigint {
  const family = nameOf(HYPERCALL, op) ?? `hypercall_${op}`;
  let name: string = family;
  let result: bigint;
  const begin = (n: string) => {
    name = n;
    hv.history.record(continuation ? { kind: 'call', op, args, name: n, continuation } : { kind: 'call', op, args, name: n });
  };
  switch (op) {
    case HYPERCALL.xen_version:
      result = xenVersion(hv, args, begin);
      break;
    case HYPERCALL.domctl:
      result = domctl(hv, args, begin);
      break;
    case HYPERCALL.sysctl:
      result = sysctl(hv, args, begin);
      break;
    case HYPERCALL.memory_op:
      result = memoryOp(hv, args, begin);
      break;
    case HYPERCALL.event_channel_op:
      result = eventChannelOp(hv, args, begin);
      break;
    case HYPERCALL.hvm_op:
      result = hvmOp(hv, args, begin);
      break;
    case HYPERCALL.arch_1: {
      // __HYPERVISOR_paging_domctl_cont: what a preempted shadow_op continues as.
      begin('arch_1');
      const r = pagingDomctlCont(hv, 'arch_1', args[0]!);
      result = r === 'restart' ? RESTARTED : r;
      break;
    }
    default:
      begin(family);
      result = hv.unmodelled(family, `hypercall ${op} (${family})`);
  }
  hv.history.record({ kind: 'return', name, result });
  return result;
}

type Begin = (name: string) => void;

// ---- xen_version: xen/common/kernel.c do_xen_version -----------------------------------------

function xenVersion(hv: MockHypervisor, args: readonly bigint[], begin: Begin): bigint {
  const cmd = Number(BigInt.asUintN(32, args[0]!));
  const arg = args[1]!;
  const sub = nameOf(XENVER, cmd);
  const name = `xen_version.${sub ?? cmd}`;
  begin(name);
  const out = (bytes: Uint8Array, what: string) => (hv.copyToGuest(name, arg, bytes, what) ? OK : E('EFAULT'));
  const str = (s: string, size: number) => {
    const b = new Uint8Array(size);
    b.set(Buffer.from(s, 'latin1').subarray(0, size - 1));
    return b;
  };
  switch (cmd) {
    case XENVER.version:
      return BigInt((hv.version.major << 16) | hv.version.minor);
    case XENVER.extraversion:
      return out(str(hv.version.extraversion, XEN_VERSION_STRING_SIZES.xen_extraversion_t), 'arg1 (xen_extraversion_t)');
    case XENVER.capabilities:
      return out(str(hv.version.capabilities, XEN_VERSION_STRING_SIZES.xen_capabilities_info_t), 'arg1 (xen_capabilities_info_t)');
    case XENVER.changeset:
      return out(str(hv.version.changeset, XEN_VERSION_STRING_SIZES.xen_changeset_info_t), 'arg1 (xen_changeset_info_t)');
    case XENVER.compile_info: {
      const b = new Uint8Array(xen_compile_info.size);
      encode(xen_compile_info, new DataView(b.buffer), 0, {
        compiler: str('gcc (mock) 12.2.0', 64),
        compile_by: str('mock', 16),
        compile_domain: str('xencall.test', 32),
        compile_date: str('Thu Jan  1 00:00:00 UTC 1970', 32),
      });
      return out(b, 'arg1 (struct xen_compile_info)');
    }
    case XENVER.platform_parameters: {
      const b = new Uint8Array(xen_platform_parameters.size);
      encode(xen_platform_parameters, new DataView(b.buffer), 0, { virt_start: 0xffff800000000000n });
      return out(b, 'arg1 (struct xen_platform_parameters)');
    }
    case XENVER.get_features: {
      const inb = hv.copyFromGuest(name, arg, xen_feature_info.size, 'arg1 (struct xen_feature_info)');
      if (!inb) return E('EFAULT');
      const fi = decode(xen_feature_info, dv(inb));
      if (fi.submap_idx !== 0) return E('EINVAL');
      // XENFEAT_writable_page_tables..XENFEAT_gnttab_map_avail_bits for a PV dom0.
      encode(xen_feature_info, dv(inb), 0, { submap: 0x0000_2f1d });
      return out(inb, 'arg1 (struct xen_feature_info)');
    }
    case XENVER.pagesize:
      return 4096n;
    default:
      return hv.unmodelled(name, `xen_version cmd ${cmd}`);
  }
}

// ---- domctl: xen/common/domctl.c do_domctl, xen/arch/x86/domctl.c arch_do_domctl ------------

function domctl(hv: MockHypervisor, args: readonly bigint[], begin: Begin): bigint {
  const uDomctl = args[0]!;
  // The name is refined once the cmd is known; until then copies are charged to "domctl".
  let name = 'domctl';
  const peek = hv.peekGuest(uDomctl, 4);
  if (peek) {
    const cmd = dv(peek).getUint32(0, true);
    name = `domctl.${nameOf(DOMCTL, cmd) ?? cmd}`;
    if (cmd === DOMCTL.shadow_op) {
      // Per-mode name, so fault rules and history can say "domctl.shadow_op.clean".
      const mode = hv.peekGuest(uDomctl + BigInt(DOMCTL_PAYLOAD_OFFSET), 4);
      const modeName = mode ? nameOf(SHADOW_OP, dv(mode).getUint32(0, true)) : undefined;
      if (mode) name = `domctl.shadow_op.${modeName ? modeName.toLowerCase() : dv(mode).getUint32(0, true)}`;
    }
  }
  begin(name);

  // 1. copy_from_guest(op, u_domctl, 1)
  const opBytes = hv.copyFromGuest(name, uDomctl, xen_domctl.size, 'arg0 (struct xen_domctl)');
  if (!opBytes) return E('EFAULT');
  const v = dv(opBytes);
  const op = decode(xen_domctl, v);
  // 2. interface version
  if (op.interface_version !== XEN_DOMCTL_INTERFACE_VERSION) return E('EACCES');

  const P = DOMCTL_PAYLOAD_OFFSET;
  let copyback = false;
  let ret = OK;
  let d: MockDomain | undefined;

  // 3. domain lookup (createdomain needs none; getdomaininfo scans).
  if (op.cmd !== DOMCTL.createdomain && op.cmd !== DOMCTL.getdomaininfo) {
    d = hv.domain(op.domain);
    if (!d) return E('ESRCH');
  }

  switch (op.cmd) {
    case DOMCTL.getdomaininfo: {
      let found = hv.domain(op.domain);
      if (!found) {
        if (op.domain >= DOMID.FIRST_RESERVED) return E('EINVAL');
        // Xen's quirk: the first domain with an id at or above the one asked for.
        found = hv.sortedDomains().find((x) => x.domid >= op.domain);
      }
      if (!found) return E('ESRCH');
      encode(xen_domctl_getdomaininfo, v, P, domainInfo(hv, found));
      v.setUint16(8, found.domid, true); // op->domain = info.domain
      copyback = true;
      break;
    }
    case DOMCTL.createdomain: {
      const cfg = decode(xen_domctl_createdomain, v, P);
      let dom = op.domain;
      if (dom > 0 && dom < DOMID.FIRST_RESERVED) {
        if (hv.domain(dom)) return E('EEXIST');
      } else {
        dom = 0;
        for (let i = 1; i < DOMID.FIRST_RESERVED; i++) {
          const cand = ((hv.rover + i - 1) % (DOMID.FIRST_RESERVED - 1)) + 1;
          if (!hv.domain(cand)) {
            dom = cand;
            break;
          }
        }
        if (!dom) return E('ENOMEM');
        hv.rover = dom;
      }
      if (cfg.max_vcpus > 128) return E('EINVAL');
      const refused = createConfigError(cfg);
      if (refused) return E(refused);
      const nd = new MockDomain({ domid: dom, handle: cfg.handle, maxVcpus: cfg.max_vcpus, hvm: (cfg.flags & XEN_DOMCTL_CDF.hvm) !== 0, vcpusCreated: false });
      nd.ssidref = cfg.ssidref;
      nd.createFlags = cfg.flags;
      nd.emulationFlags = cfg.arch.emulation_flags;
      nd.maxEvtchnPort = cfg.max_evtchn_port;
      // grant_table_init (common/grant_table.c lines 1981-1982): a negative limit means the host's default.
      nd.maxGrantFrames = cfg.max_grant_frames < 0 ? DEFAULT_MAX_GRANT_FRAMES : cfg.max_grant_frames;
      nd.controllerPauseCount = 1; // domain_create() leaves the domain paused by the controller
      hv.domains.set(dom, nd);
      hv.effect(name, 'domain.created', { domid: dom });
      v.setUint16(8, dom, true); // op->domain = d->domain_id
      copyback = true;
      break;
    }
    case DOMCTL.destroydomain: {
      if (d!.domid === 0) return E('EINVAL'); // d == current->domain
      d!.dying = true;
      // domain_kill -> domain_relinquish_resources -> paging_teardown: a pending CLEAN/PEEK makes
      // paging_free_log_dirty_bitmap answer -EBUSY (xen/arch/x86/mm/paging.c lines 134-139), on
      // every try, and a dying domain's paging ops are ignored (paging_domctl lines 696-701), so
      // hypercall 49 can no longer finish it: the domain stays dying.
      if (d!.pagingPreempt && d!.pagingPreempt.op !== SHADOW_OP.OFF) {
        hv.effect(name, 'domain.teardown_blocked', { domid: d!.domid });
        return E('EBUSY');
      }
      hv.domains.delete(d!.domid);
      hv.effect(name, 'domain.destroyed', { domid: d!.domid });
      break;
    }
    case DOMCTL.pausedomain: {
      if (d!.domid === 0) return E('EINVAL');
      if (d!.controllerPauseCount + 1 > MAX_CONTROLLER_PAUSE_COUNT) return E('EOVERFLOW');
      d!.controllerPauseCount++;
      syncRunning(d!);
      hv.effect(name, 'domain.paused', { domid: d!.domid, count: d!.controllerPauseCount });
      break;
    }
    case DOMCTL.unpausedomain: {
      if (d!.controllerPauseCount === 0) return E('EINVAL');
      d!.controllerPauseCount--;
      syncRunning(d!);
      hv.effect(name, 'domain.unpaused', { domid: d!.domid, count: d!.controllerPauseCount });
      break;
    }
    case DOMCTL.setdomainhandle:
      // do_domctl: memcpy(d->handle, op->u.setdomainhandle.handle, ...); no copy-back.
      d!.handle = decode(xen_domctl_setdomainhandle, v, P).handle.slice();
      hv.effect(name, 'domain.handle', { domid: d!.domid });
      break;
    case DOMCTL.max_mem: {
      const { max_memkb } = decode(xen_domctl_max_mem, v, P);
      const pages = max_memkb >> 2n;
      d!.maxPages = pages > 0xffffffffn ? 0xffffffffn : pages;
      hv.effect(name, 'domain.max_mem', { domid: d!.domid, max_pages: d!.maxPages });
      break;
    }
    case DOMCTL.max_vcpus: {
      const { max } = decode(xen_domctl_max_vcpus, v, P);
      if (d!.domid === 0 || max !== d!.maxVcpus) return E('EINVAL');
      // vcpu_create() for every missing vcpu; existing ones are kept, so a repeat is a no-op.
      let created = 0;
      for (let i = 0; i < max; i++) {
        if (d!.vcpus[i]) continue;
        d!.vcpus[i] = d!.newVcpu(i, false);
        created++;
      }
      hv.effect(name, 'domain.max_vcpus', { domid: d!.domid, max, created });
      break;
    }
    case DOMCTL.shadow_op: {
      // arch_do_domctl (xen/arch/x86/domctl.c lines 215-221): -ERESTART becomes a continuation
      // of __HYPERVISOR_paging_domctl_cont with no copy-back; anything else copies the struct back.
      const r = pagingDomctl(hv, name, d!, v, false);
      if (r === 'restart') {
        hv.continueWith(HYPERCALL.arch_1, uDomctl);
        return RESTARTED;
      }
      ret = r;
      copyback = true;
      break;
    }
    case DOMCTL.getpageframeinfo3: {
      const { num, array } = decode(xen_domctl_getpageframeinfo3, v, P);
      if (num > 1024n) return E('E2BIG');
      for (let i = 0n; i < num; i++) {
        // Strictly per element and in place: read gfn i, write its type over it.
        const gb = hv.copyFromGuest(name, array + i * 8n, 8, `array[${i}]`);
        if (!gb) return E('EFAULT');
        const type = d!.pageType(dv(gb).getBigUint64(0, true));
        const tb = new Uint8Array(8);
        // Xen's `type` is an unsigned long built from unsigned 32-bit XEN_DOMCTL_PFINFO_* values
        // and copied out whole (xen/arch/x86/domctl.c:267, 305-306, 317 at RELEASE-4.17.7): the
        // flags are zero-extended. JavaScript's `|` makes L4TAB | LPINTAB negative; >>> 0 undoes it.
        dv(tb).setBigUint64(0, BigInt(type >>> 0), true);
        if (!hv.copyToGuest(name, array + i * 8n, tb, `array[${i}]`)) return E('EFAULT');
      }
      break; // no copyback for this op
    }
    case DOMCTL.getvcpuinfo:
    case DOMCTL.setvcpuaffinity:
    case DOMCTL.getvcpuaffinity:
    case DOMCTL.settimeoffset:
    case DOMCTL.gethvmcontext:
    case DOMCTL.sethvmcontext:
    case DOMCTL.getvcpucontext: {
      const r = vcpuAndContextDomctl(hv, name, op.cmd, d!, v);
      ret = r.ret;
      copyback = r.copyback;
      break;
    }
    default:
      return hv.unmodelled(name, `domctl cmd ${op.cmd}`);
  }

  if (copyback && !hv.copyToGuest(name, uDomctl, opBytes, 'arg0 (struct xen_domctl)')) ret = E('EFAULT');
  return ret;
}

/**
 * What domain_create refuses in a configuration, in Xen's order (RELEASE-4.17.7):
 * sanitise_domain_config (common/domain.c:483-556), arch_sanitise_domain_config
 * (arch/x86/domain.c:617-696), then arch_domain_create's emulation flags (domain.c:773-790,
 * emulation_flags_ok at 698-722). The mock's host has HVM with HAP, no IOMMU, no vmtrace, no
 * vPMU and no tboot.
 */
function createConfigError(cfg: Decoded<typeof xen_domctl_createdomain.fields>): 'EINVAL' | 'EOPNOTSUPP' | null {
  const F = XEN_DOMCTL_CDF;
  const hvm = (cfg.flags & F.hvm) !== 0;
  const hap = (cfg.flags & F.hap) !== 0;
  const known = F.hvm | F.hap | F.s3_integrity | F.oos_off | F.xs_domain | F.iommu | F.nested_virt | F.vpmu;
  if (cfg.flags & ~known) return 'EINVAL';
  if (cfg.grant_opts & ~XEN_DOMCTL_GRANT.version_mask) return 'EINVAL';
  if (cfg.max_vcpus < 1) return 'EINVAL';
  if (hap && !hvm) return 'EINVAL';
  if ((cfg.flags & F.iommu) !== 0 || cfg.iommu_opts !== 0) return 'EINVAL'; // "IOMMU requested but not available"
  if (cfg.vmtrace_size) return 'EINVAL'; // vmtrace not available
  if (cfg.flags & F.vpmu) return 'EINVAL'; // vpmu not available
  if (cfg.flags & F.s3_integrity) return 'EINVAL'; // no CONFIG_TBOOT
  if (cfg.flags & F.nested_virt && !hap) return 'EINVAL';
  if (cfg.arch.misc_flags & ~XEN_X86_MISC.MSR_RELAXED) return 'EINVAL';
  const em = cfg.arch.emulation_flags;
  if (em & ~XEN_X86_EMU.ALL) return 'EINVAL';
  // emulation_flags_ok for a domain that is not the hardware domain: HVM takes everything but
  // vPCI, or (PVH) the local APIC only; PV takes nothing or the PIT.
  const ok = hvm ? em === (XEN_X86_EMU.ALL & ~XEN_X86_EMU.VPCI) || em === XEN_X86_EMU.LAPIC : em === 0 || em === XEN_X86_EMU.PIT;
  return ok ? null : 'EOPNOTSUPP';
}

/** common/domctl.c getdomaininfo(), field by field. */
function domainInfo(hv: MockHypervisor, d: MockDomain) {
  void hv;
  // Blocked only if every online vcpu is; running if any is; no online vcpu means neither.
  let vflags = XEN_DOMINF.blocked;
  let online = 0;
  let maxVcpuId = 0xffffffff; // XEN_INVALID_MAX_VCPU_ID until a vcpu exists
  d.vcpus.forEach((x, i) => {
    if (!x) return;
    maxVcpuId = i;
    if (!x.online) return;
    if (!x.blocked) vflags &= ~XEN_DOMINF.blocked;
    if (x.running) vflags |= XEN_DOMINF.running;
    online++;
  });
  // shutdown_code is SHUTDOWN_CODE_INVALID (~0u) until a shutdown, and Xen ORs it in shifted
  // whatever the shutdown flag says: a live domain's flags carry 0xffff0000.
  const shutdownCode = d.shutdownReason ?? 0xffffffff;
  const flags =
    ((online ? vflags : 0) |
      (d.dying ? XEN_DOMINF.dying : 0) |
      (d.shutdownReason !== null ? XEN_DOMINF.shutdown : 0) |
      (d.controllerPauseCount > 0 ? XEN_DOMINF.paused : 0) |
      (d.hvm ? XEN_DOMINF.hvm_guest : 0) |
      (d.createFlags & XEN_DOMCTL_CDF.hap ? XEN_DOMINF.hap : 0) |
      (shutdownCode << XEN_DOMINF.shutdownshift)) >>>
    0;
  return {
    domain: d.domid,
    flags,
    tot_pages: BigInt(d.totPages),
    max_pages: d.maxPages,
    outstanding_pages: 0n,
    shr_pages: 0n,
    paged_pages: 0n,
    shared_info_frame: 0x1000n + BigInt(d.domid),
    cpu_time: d.vcpus.reduce((s, x) => s + x.cpu_time, 0n),
    nr_online_vcpus: online,
    max_vcpu_id: maxVcpuId,
    ssidref: d.ssidref,
    handle: d.handle,
    cpupool: d.cpupool,
    gpaddr_bits: 52,
    arch_config: { emulation_flags: d.emulationFlags, misc_flags: 0 },
  };
}

// ---- sysctl: xen/common/sysctl.c do_sysctl ------------------------------------------------

function sysctl(hv: MockHypervisor, args: readonly bigint[], begin: Begin): bigint {
  const uSysctl = args[0]!;
  let name = 'sysctl';
  const peek = hv.peekGuest(uSysctl, 4);
  if (peek) name = `sysctl.${nameOf(SYSCTL, dv(peek).getUint32(0, true)) ?? dv(peek).getUint32(0, true)}`;
  begin(name);

  const opBytes = hv.copyFromGuest(name, uSysctl, xen_sysctl.size, 'arg0 (struct xen_sysctl)');
  if (!opBytes) return E('EFAULT');
  const v = dv(opBytes);
  const op = decode(xen_sysctl, v);
  if (op.interface_version !== XEN_SYSCTL_INTERFACE_VERSION) return E('EACCES');
  const P = SYSCTL_PAYLOAD_OFFSET;
  let ret = OK;
  let copyback = true;

  switch (op.cmd) {
    case SYSCTL.readconsole: {
      // drivers/char/console.c read_console_ring
      const rc = decode(xen_sysctl_readconsole, v, P);
      const con = hv.console;
      let c = con.cons;
      const p = con.prod;
      if (rc.incremental) {
        const inRange = c <= p ? c < rc.index && rc.index <= p : c < rc.index || rc.index <= p;
        if (inRange) c = rc.index;
      }
      let sofar = 0;
      while (c !== p && sofar < rc.count) {
        const idx = c & (con.size - 1);
        let len = (p - c) >>> 0;
        if (idx + len > con.size) len = con.size - idx;
        if (sofar + len > rc.count) len = rc.count - sofar;
        if (!hv.copyToGuest(name, rc.buffer + BigInt(sofar), con.ring.slice(idx, idx + len), `buffer[${sofar}..${sofar + len})`)) {
          return E('EFAULT'); // before any clear
        }
        sofar += len;
        c = (c + len) >>> 0;
      }
      if (rc.clear) {
        con.cons = ((p - c) >>> 0) > con.size ? (p - con.size) >>> 0 : c;
        hv.effect(name, 'console.cleared', { cons: con.cons });
      }
      encode(xen_sysctl_readconsole, v, P, { count: sofar, index: c });
      break;
    }
    case SYSCTL.physinfo: {
      encode(xen_sysctl_physinfo, v, P, {
        threads_per_core: 1,
        cores_per_socket: hv.nrCpus,
        nr_cpus: hv.nrCpus,
        max_cpu_id: hv.nrCpus - 1,
        nr_nodes: 1,
        max_node_id: 0,
        cpu_khz: 2_000_000,
        capabilities: hv.capabilities,
        total_pages: BigInt(hv.totalPages),
        free_pages: BigInt(hv.totalPages - [...hv.domains.values()].reduce((s, d) => s + d.totPages, 0)),
        scrub_pages: 0n,
        outstanding_pages: 0n,
        max_mfn: hv.maxRamPage - 1n,
      });
      break;
    }
    case SYSCTL.getdomaininfolist: {
      const gl = decode(xen_sysctl_getdomaininfolist, v, P);
      let num = 0;
      for (const d of hv.sortedDomains()) {
        if (d.domid < gl.first_domain) continue;
        if (num === gl.max_domains) break;
        const rec = new Uint8Array(xen_domctl_getdomaininfo.size);
        encode(xen_domctl_getdomaininfo, dv(rec), 0, domainInfo(hv, d));
        if (!hv.copyToGuest(name, gl.buffer + BigInt(num * rec.length), rec, `buffer[${num}]`)) {
          ret = E('EFAULT');
          break;
        }
        num++;
      }
      if (ret !== OK) return ret;
      encode(xen_sysctl_getdomaininfolist, v, P, { num_domains: num });
      break;
    }
    case SYSCTL.sched_id:
      // op->u.sched_id.sched_id = sched_id(): the default cpupool's scheduler.
      v.setUint32(P, hv.host.schedulerId, true);
      break;
    case SYSCTL.getcpuinfo:
    case SYSCTL.numainfo:
    case SYSCTL.cputopoinfo: {
      const r = cpuSysctl(hv, name, op.cmd, v, uSysctl);
      if (r === 'goto out') return E('EFAULT'); // getcpuinfo's `goto out`: ret != 0, no copy-back
      ret = r;
      break;
    }
    default:
      copyback = false;
      return hv.unmodelled(name, `sysctl cmd ${op.cmd}`);
  }
  if (copyback && ret === OK && !hv.copyToGuest(name, uSysctl, opBytes, 'arg0 (struct xen_sysctl)')) ret = E('EFAULT');
  return ret;
}

// ---- memory_op: xen/common/memory.c do_memory_op --------------------------------------------

function memoryOp(hv: MockHypervisor, args: readonly bigint[], begin: Begin): bigint {
  const cmd = Number(args[0]! & BigInt(MEMOP_CMD_MASK));
  const name = `memory_op.${nameOf(XENMEM, cmd) ?? cmd}`;
  begin(name);
  switch (cmd) {
    case XENMEM.populate_physmap: {
      // The guest kernel re-executes a continuation at once (privcmd never sees it), so a
      // preempted call goes round here with the progress in cmd, as Xen's re-entry would.
      let cmdArg = args[0]!;
      for (;;) {
        const r = populatePhysmapOp(hv, name, cmdArg, args[1]!);
        if (r.continueAt === null) return r.ret;
        hv.effect(name, 'memory_op.continuation', { start_extent: r.continueAt });
        cmdArg = BigInt(XENMEM.populate_physmap) | (BigInt(r.continueAt) << BigInt(MEMOP_EXTENT_SHIFT));
      }
    }
    case XENMEM.maximum_ram_page:
      return hv.maxRamPage;
    case XENMEM.current_reservation:
    case XENMEM.maximum_reservation:
    case XENMEM.maximum_gpfn: {
      // do_memory_op (xen/common/memory.c, RELEASE-4.17.7 lines 1491-1531): the domid is copied
      // in, the answer is the result. maximum_gpfn is domain_get_maximum_gpfn (xen/arch/x86/mm.c
      // 482-491): an HVM guest's p2m max_mapped_pfn; for PV, nr_pfns - 1.
      const b = hv.copyFromGuest(name, args[1]!, 2, 'arg1 (domid_t)');
      if (!b) return E('EFAULT');
      let domid = dv(b).getUint16(0, true);
      if (domid === DOMID.SELF) domid = 0;
      const d = hv.domain(domid);
      if (!d) return E('ESRCH');
      if (cmd === XENMEM.maximum_gpfn) return d.hvm ? BigInt(Math.max(d.maxGpfn(), 0)) : BigInt(Math.max(d.totPages, 1) - 1);
      return cmd === XENMEM.current_reservation ? BigInt(d.totPages) : d.maxPages;
    }
    default:
      return hv.unmodelled(name, `memory_op cmd ${cmd}`);
  }
}

/** XENMEMF_* bits of xen_memory_reservation.mem_flags (public/memory.h). */
const XENMEMF_POPULATE_ON_DEMAND = 1 << 16;
const XENMEMF_VNODE = 1 << 18;
/** max_order() for dom0 (control and hardware domain): CONFIG_CTLDOM_MAX_ORDER = 2 * PAGETABLE_ORDER, capped at MAX_ORDER (x86 asm/config.h, xen/mm.h). */
const DOM0_MAX_ORDER = 18;
/** MAX_NUMNODES on x86 (CONFIG_NR_NUMA_NODES' default). */
const MAX_NUMNODES = 64;
/** A made-up MFN base for PV targets' write-back (the mock has no machine frames). */
const MOCK_MFN_BASE = 0x100000n;

/**
 * XENMEM_populate_physmap, one entry (xen/common/memory.c at RELEASE-4.17.7: do_memory_op lines
 * 1404-1475, construct_memop_from_reservation lines 1020-1066, populate_physmap lines 157-311).
 * Every failure returns the extents done so far, never an errno. A preempted call (the mock
 * preempts after `hv.memopExtentsPerSlice` extents) asks for a continuation at that count.
 */
function populatePhysmapOp(hv: MockHypervisor, name: string, cmdArg: bigint, arg: bigint): { ret: bigint; continueAt: number | null } {
  const startExtent = Number(cmdArg >> BigInt(MEMOP_EXTENT_SHIFT));
  const done = (n: number) => ({ ret: BigInt(n), continueAt: null });
  // 1. copy_from_guest(&reservation, arg, 1): on a continuation too.
  const rb = hv.copyFromGuest(name, arg, xen_memory_reservation.size, 'arg1 (struct xen_memory_reservation)');
  if (!rb) return done(startExtent);
  const r = decode(xen_memory_reservation, dv(rb));
  // 2. "Is size too large for us to encode a continuation?"
  if (r.nr_extents > BigInt(0xffffffff >>> MEMOP_EXTENT_SHIFT)) return done(startExtent);
  const nrExtents = Number(r.nr_extents);
  if (startExtent >= nrExtents) return done(startExtent);
  // 3. rcu_lock_domain_by_any_id: DOMID_SELF is the caller, dom0.
  const d = hv.domain(r.domid === DOMID.SELF ? 0 : r.domid);
  if (!d) return done(startExtent);
  // 4. construct_memop_from_reservation: address bits of 12 or fewer (when they matter), an
  //    unknown vnode or node, fail the whole call.
  const addressBits = r.mem_flags & 0xff;
  if (addressBits !== 0 && addressBits <= 12) return done(startExtent);
  const node = ((r.mem_flags >>> 8) - 1) & 0xff;
  if ((r.mem_flags & XENMEMF_VNODE) === 0 && node !== 0xff && node >= MAX_NUMNODES) return done(startExtent);
  if (r.mem_flags & XENMEMF_POPULATE_ON_DEMAND) {
    hv.unmodelled(name, 'populate-on-demand (XENMEMF_populate_on_demand)');
    return done(startExtent);
  }
  // 5. populate_physmap: the order limit for the caller, then extent by extent.
  if (r.extent_order > DOM0_MAX_ORDER) return done(startExtent);
  const pagesPerExtent = 2 ** r.extent_order;
  for (let i = startExtent; i < nrExtents; i++) {
    if (i !== startExtent && i - startExtent >= hv.memopExtentsPerSlice) return { ret: BigInt(i), continueAt: i };
    const gb = hv.copyFromGuest(name, r.extent_start + BigInt(i) * 8n, 8, `extent_start[${i}]`);
    if (!gb) return done(i);
    const gpfn = dv(gb).getBigUint64(0, true);
    // alloc_domheap_pages -> assign_pages (common/page_alloc.c lines 2322-2400): a dying domain,
    // or tot_pages + 2^order above max_pages, gets nothing; nor does a host out of pages.
    const hostFree = hv.totalPages - [...hv.domains.values()].reduce((s, x) => s + x.totPages, 0);
    if (d.dying || BigInt(d.totPages) > d.maxPages || BigInt(pagesPerExtent) > d.maxPages - BigInt(d.totPages) || pagesPerExtent > hostFree) return done(i);
    // guest_physmap_add_page: the new pages replace whatever the gfns held (the old pages stay
    // allocated to the domain, as p2m_add_page leaves them).
    d.populate(Number(gpfn), pagesPerExtent);
    hv.effect(name, 'memory.populated', { domid: d.domid, gfn: gpfn, pages: pagesPerExtent });
    // A PV target learns the new frame's MFN through the list, after the allocation.
    if (!d.hvm) {
      const mb = new Uint8Array(8);
      dv(mb).setBigUint64(0, MOCK_MFN_BASE + gpfn, true);
      if (!hv.copyToGuest(name, r.extent_start + BigInt(i) * 8n, mb, `extent_start[${i}]`)) return done(i);
    }
  }
  return done(nrExtents);
}

// ---- event_channel_op: xen/common/event_channel.c do_event_channel_op -----------------------

function eventChannelOp(hv: MockHypervisor, args: readonly bigint[], begin: Begin): bigint {
  const cmd = Number(BigInt.asUintN(32, args[0]!));
  const arg = args[1]!;
  const name = `event_channel_op.${nameOf(EVTCHNOP, cmd) ?? cmd}`;
  begin(name);
  const self = (dom: number) => (dom === DOMID.SELF ? 0 : dom);
  switch (cmd) {
    case EVTCHNOP.alloc_unbound: {
      const b = hv.copyFromGuest(name, arg, evtchn_alloc_unbound.size, 'arg1 (struct evtchn_alloc_unbound)');
      if (!b) return E('EFAULT');
      const a = decode(evtchn_alloc_unbound, dv(b));
      const d = hv.domain(self(a.dom));
      if (!d) return E('ESRCH');
      const port = d.freePort();
      if (port < 0) return E('ENOSPC');
      d.evtchns.set(port, { state: { state: 'unbound', remoteDom: self(a.remote_dom) }, vcpu: 0, pending: 0 });
      hv.effect(name, 'evtchn.allocated', { domid: d.domid, port, remoteDom: self(a.remote_dom) });
      encode(evtchn_alloc_unbound, dv(b), 0, { port });
      // "Cleaning up here would be a mess!": the port stays allocated if this copy fails.
      return hv.copyToGuest(name, arg, b, 'arg1 (struct evtchn_alloc_unbound)') ? OK : E('EFAULT');
    }
    case EVTCHNOP.close: {
      const b = hv.copyFromGuest(name, arg, evtchn_close.size, 'arg1 (struct evtchn_close)');
      if (!b) return E('EFAULT');
      const { port } = decode(evtchn_close, dv(b));
      const d = hv.domain(0)!; // closes a port of the calling domain
      if (!d.evtchns.has(port)) return E('EINVAL');
      d.evtchns.delete(port);
      hv.effect(name, 'evtchn.closed', { domid: 0, port });
      return OK;
    }
    case EVTCHNOP.send: {
      const b = hv.copyFromGuest(name, arg, evtchn_send.size, 'arg1 (struct evtchn_send)');
      if (!b) return E('EFAULT');
      const { port } = decode(evtchn_send, dv(b));
      const ch = hv.domain(0)!.evtchns.get(port);
      if (!ch) return E('EINVAL');
      ch.pending++;
      hv.effect(name, 'evtchn.sent', { domid: 0, port });
      return OK;
    }
    case EVTCHNOP.status: {
      const b = hv.copyFromGuest(name, arg, evtchn_status.size, 'arg1 (struct evtchn_status)');
      if (!b) return E('EFAULT');
      const s = decode(evtchn_status, dv(b));
      const d = hv.domain(self(s.dom));
      if (!d) return E('ESRCH');
      if (s.port > d.maxEvtchnPort) return E('EINVAL');
      const ch = d.evtchns.get(s.port);
      const st = ch?.state;
      encode(evtchn_status, dv(b), 0, {
        status: st ? EVTCHNSTAT[st.state] : EVTCHNSTAT.closed,
        vcpu: ch?.vcpu ?? 0,
        remote_dom: st && 'remoteDom' in st ? st.remoteDom : 0,
        remote_port: st && 'remotePort' in st ? st.remotePort : 0,
      });
      return hv.copyToGuest(name, arg, b, 'arg1 (struct evtchn_status)') ? OK : E('EFAULT');
    }
    default:
      return hv.unmodelled(name, `event_channel_op cmd ${cmd}`);
  }
}

// ---- vcpus, affinity, time offset, HVM and vcpu context -----------------------------------------

/**
 * The domctls on vcpus and contexts, each in its Xen function's order. `v` is do_domctl's local
 * copy of the struct (results go into it for the copy-back); returns ret and whether the
 * struct is copied back.
 */
function vcpuAndContextDomctl(hv: MockHypervisor, name: string, cmd: number, d: MockDomain, v: DataView): { ret: bigint; copyback: boolean } {
  const P = DOMCTL_PAYLOAD_OFFSET;
  switch (cmd) {
    case DOMCTL.getvcpuinfo: {
      // common/domctl.c do_domctl: -EINVAL past max_vcpus, -ESRCH for a hole; results copied back.
      const { vcpu } = decode(xen_domctl_getvcpuinfo, v, P);
      if (vcpu >= d.maxVcpus) return { ret: E('EINVAL'), copyback: false };
      const vc = d.vcpus[vcpu];
      if (!vc) return { ret: E('ESRCH'), copyback: false };
      encode(xen_domctl_getvcpuinfo, v, P, { online: vc.online ? 1 : 0, blocked: vc.blocked ? 1 : 0, running: vc.running ? 1 : 0, cpu_time: vc.cpu_time, cpu: vc.cpu });
      return { ret: OK, copyback: true };
    }
    case DOMCTL.setvcpuaffinity:
    case DOMCTL.getvcpuaffinity:
      // Neither sets copyback: results go only into the caller's bitmaps.
      return { ret: vcpuAffinityDomctl(hv, name, cmd, d, v), copyback: false };
    case DOMCTL.settimeoffset: {
      // domain_set_time_offset(); no copy-back.
      const { time_offset_seconds } = decode(xen_domctl_settimeoffset, v, P);
      d.timeOffsetSeconds = time_offset_seconds;
      hv.effect(name, 'domain.time_offset', { domid: d.domid, seconds: time_offset_seconds });
      return { ret: OK, copyback: false };
    }
    case DOMCTL.gethvmcontext: {
      // arch/x86/domctl.c: copyback is set on every path, errors included, so an EFAULT on it
      // can replace -EINVAL or -ENOSPC.
      const hc = decode(xen_domctl_hvmcontext, v, P);
      if (d.domid === 0 || !d.hvmState) return { ret: E('EINVAL'), copyback: true };
      // hvm_save_size(): the sum of every record type's worst case, an upper bound on c.cur.
      const saveSize = d.hvmState.saveSize();
      if (hc.buffer === 0n) {
        encode(xen_domctl_hvmcontext, v, P, { size: saveSize });
        return { ret: OK, copyback: true };
      }
      if (hc.size < saveSize) return { ret: E('ENOSPC'), copyback: true };
      // domain_pause, hvm_save, domain_unpause: transient, nothing to record.
      const blob = d.hvmState.save();
      encode(xen_domctl_hvmcontext, v, P, { size: blob.length });
      const ok = hv.copyToGuest(name, hc.buffer, blob, `buffer[0..${blob.length})`);
      return { ret: ok ? OK : E('EFAULT'), copyback: true };
    }
    case DOMCTL.sethvmcontext: {
      // arch/x86/domctl.c: the whole buffer is copied in before domain_pause and hvm_load().
      const hc = decode(xen_domctl_hvmcontext, v, P);
      if (d.domid === 0 || !d.hvmState) return { ret: E('EINVAL'), copyback: false };
      const data = hv.copyFromGuest(name, hc.buffer, hc.size, `buffer[0..${hc.size})`);
      if (!data) return { ret: E('EFAULT'), copyback: false };
      if (d.dying) return { ret: E('EINVAL'), copyback: false };
      // domain_pause, hvm_load, domain_unpause: records before a failing one stay loaded.
      const failed = d.hvmState.load(data);
      if (failed) hv.effect(name, 'hvm.context_load_failed', { domid: d.domid, bytes: data.length, errno: failed });
      else hv.effect(name, 'hvm.context_loaded', { domid: d.domid, bytes: data.length });
      return { ret: failed ? E(failed) : OK, copyback: false };
    }
    case DOMCTL.getvcpucontext: {
      // common/domctl.c: checks, then the context is copied out, then copyback = 1 whatever
      // that copy returned.
      const vc = decode(xen_domctl_vcpucontext, v, P);
      const target = vc.vcpu < d.maxVcpus ? d.vcpus[vc.vcpu] : undefined;
      // The calling vcpu (dom0's vcpu 0 here) cannot be paused to read its own context.
      if (!target || (d.domid === 0 && vc.vcpu === 0)) return { ret: E('EINVAL'), copyback: false };
      if (!target.initialised) return { ret: E('ENODATA'), copyback: false };
      const ctxt = target.context ?? vcpuContextFor(d.domid, vc.vcpu);
      const ok = hv.copyToGuest(name, vc.ctxt, ctxt.subarray(0, vcpu_guest_context.size), 'ctxt (vcpu_guest_context)');
      return { ret: ok ? OK : E('EFAULT'), copyback: true };
    }
    default:
      throw new Error(`vcpuAndContextDomctl: cmd ${cmd}`);
  }
}

/** xen/common/sched/core.c vcpu_affinity_domctl, with bitmap.c's copies. */
function vcpuAffinityDomctl(hv: MockHypervisor, name: string, cmd: number, d: MockDomain, v: DataView): bigint {
  const aff = decode(xen_domctl_vcpuaffinity, v, DOMCTL_PAYLOAD_OFFSET);
  if (aff.vcpu >= d.maxVcpus) return E('EINVAL');
  const vc = d.vcpus[aff.vcpu];
  if (!vc) return E('ESRCH');
  const hardFlag = (aff.flags & XEN_VCPUAFFINITY.HARD) !== 0;
  const softFlag = (aff.flags & XEN_VCPUAFFINITY.SOFT) !== 0;
  // vcpuaffinity_params_invalid
  if (aff.flags === 0 || (hardFlag && aff.cpumap_hard.bitmap === 0n) || (softFlag && aff.cpumap_soft.bitmap === 0n)) return E('EINVAL');
  const nrCpuIds = hv.nrCpus;
  const mask = (1n << BigInt(nrCpuIds)) - 1n;
  // One cpupool holding every cpu: its online mask is all of them.
  const online = mask;

  if (cmd === DOMCTL.getvcpuaffinity) {
    // The plain masks; each assignment replaces ret, so a hard-map EFAULT is lost when SOFT is set.
    let ret = OK;
    if (hardFlag) ret = toXenctl(hv, name, aff.cpumap_hard, vc.hardAffinity & mask, nrCpuIds, 'cpumap_hard');
    if (softFlag) ret = toXenctl(hv, name, aff.cpumap_soft, vc.softAffinity & mask, nrCpuIds, 'cpumap_soft');
    return ret;
  }

  const oldHard = vc.hardAffinity;
  let ret = OK;
  // FORCE undoes a SCHEDOP_pin_override, which the mock does not model.
  if (hardFlag) {
    const hard = fromXenctl(hv, name, aff.cpumap_hard, nrCpuIds, 'cpumap_hard');
    if (hard === null) return E('EFAULT');
    // vcpu_set_hard_affinity: the new mask must meet the pool's online cpus.
    if ((hard & online) === 0n) return E('EINVAL');
    vc.hardAffinity = hard;
    hv.effect(name, 'vcpu.affinity', { domid: d.domid, vcpu: aff.vcpu, hard });
    // What the scheduler will use: hard & online, written over the caller's map.
    ret = toXenctl(hv, name, aff.cpumap_hard, online & vc.hardAffinity, nrCpuIds, 'cpumap_hard');
  }
  if (softFlag) {
    // ret is reassigned here: an EFAULT from the hard map's copy-back above is lost.
    const soft = fromXenctl(hv, name, aff.cpumap_soft, nrCpuIds, 'cpumap_soft');
    if (soft === null) {
      // "the caller expects nothing happened": roll the hard map back.
      if (hardFlag) {
        vc.hardAffinity = oldHard;
        hv.effect(name, 'vcpu.affinity', { domid: d.domid, vcpu: aff.vcpu, hard: oldHard });
      }
      return E('EFAULT');
    }
    vc.softAffinity = soft;
    hv.effect(name, 'vcpu.affinity', { domid: d.domid, vcpu: aff.vcpu, soft });
    ret = toXenctl(hv, name, aff.cpumap_soft, soft & online & vc.hardAffinity, nrCpuIds, 'cpumap_soft');
  }
  return ret;
}

type Xenctl = Decoded<typeof xenctl_bitmap.fields>;

/** xenctl_bitmap_to_bitmap: min(guest, Xen) bytes copied in; a partial last byte masked. Null: EFAULT. */
function fromXenctl(hv: MockHypervisor, name: string, map: Xenctl, nbits: number, what: string): bigint | null {
  const guestBytes = Math.ceil(map.nr_bits / 8);
  const xenBytes = Math.ceil(nbits / 8);
  const copyBytes = Math.min(guestBytes, xenBytes);
  const bytes = new Uint8Array(xenBytes);
  if (copyBytes) {
    const got = hv.copyFromGuest(name, map.bitmap, copyBytes, `${what}.bitmap[0..${copyBytes})`);
    if (!got) return null;
    bytes.set(got);
    if (map.nr_bits & 7 && guestBytes === copyBytes) bytes[guestBytes - 1]! &= ~(0xff << (map.nr_bits & 7)) & 0xff;
  }
  let value = 0n;
  for (let i = xenBytes - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
  return value & ((1n << BigInt(nbits)) - 1n);
}

/** bitmap_to_xenctl_bitmap: Xen's bytes copied out, then the rest of the caller's map zeroed a byte at a time. */
function toXenctl(hv: MockHypervisor, name: string, map: Xenctl, value: bigint, nbits: number, what: string): bigint {
  const guestBytes = Math.ceil(map.nr_bits / 8);
  const xenBytes = Math.ceil(nbits / 8);
  const copyBytes = Math.min(guestBytes, xenBytes);
  const bytes = new Uint8Array(copyBytes);
  for (let i = 0; i < copyBytes; i++) bytes[i] = Number((value >> BigInt(i * 8)) & 0xffn);
  if (copyBytes && !hv.copyToGuest(name, map.bitmap, bytes, `${what}.bitmap[0..${copyBytes})`)) return E('EFAULT');
  for (let i = copyBytes; i < guestBytes; i++) {
    if (!hv.copyToGuest(name, map.bitmap + BigInt(i), new Uint8Array(1), `${what}.bitmap[${i}]`)) return E('EFAULT');
  }
  return OK;
}

/**
 * do_sysctl's getcpuinfo, numainfo and cputopoinfo. Returns ret (the final copy-back follows
 * when it is 0), or 'goto out' for getcpuinfo's fault exit, which skips the copy-back.
 */
function cpuSysctl(hv: MockHypervisor, name: string, cmd: number, v: DataView, uSysctl: bigint): bigint | 'goto out' {
  const P = SYSCTL_PAYLOAD_OFFSET;
  const u32le = (n: number) => {
    const b = new Uint8Array(4);
    dv(b).setUint32(0, n, true);
    return b;
  };
  switch (cmd) {
    case SYSCTL.getcpuinfo: {
      const gi = decode(xen_sysctl_getcpuinfo, v, P);
      const nr = Math.min(gi.max_cpus, hv.nrCpus);
      let i = 0;
      for (; i < nr; i++) {
        const rec = new Uint8Array(8);
        dv(rec).setBigUint64(0, hv.host.cpuIdleTime[i] ?? 0n, true);
        if (!hv.copyToGuest(name, gi.info + BigInt(i * 8), rec, `info[${i}]`)) return 'goto out';
      }
      encode(xen_sysctl_getcpuinfo, v, P, { nr_cpus: i });
      return OK;
    }
    case SYSCTL.cputopoinfo: {
      const ti = decode(xen_sysctl_cputopoinfo, v, P);
      let numCpus = hv.nrCpus; // cpumask_last(&cpu_present_map) + 1
      let i: number;
      if (ti.cputopo !== 0n) {
        if (numCpus > ti.num_cpus) numCpus = ti.num_cpus;
        for (i = 0; i < numCpus; i++) {
          // One socket, one node, a core per cpu (physinfo: 1 thread per core).
          const rec = new Uint8Array(12);
          dv(rec).setUint32(0, i, true);
          dv(rec).setUint32(4, 0, true);
          dv(rec).setUint32(8, 0, true);
          if (!hv.copyToGuest(name, ti.cputopo + BigInt(i * 12), rec, `cputopo[${i}]`)) return E('EFAULT');
        }
      } else {
        i = numCpus;
      }
      if (ti.num_cpus !== i) {
        encode(xen_sysctl_cputopoinfo, v, P, { num_cpus: i });
        // __copy_field_to_guest(u_sysctl, op, u.cputopoinfo.num_cpus)
        if (!hv.copyToGuest(name, uSysctl + BigInt(P), u32le(i), 'arg0 u.cputopoinfo.num_cpus')) return E('EFAULT');
      }
      return OK;
    }
    case SYSCTL.numainfo: {
      const ni = decode(xen_sysctl_numainfo, v, P);
      let numNodes = 1; // last_node(node_online_map) + 1
      let i: number;
      if (ni.meminfo !== 0n || ni.distance !== 0n) {
        if (numNodes > ni.num_nodes) numNodes = ni.num_nodes;
        const used = [...hv.domains.values()].reduce((s, d) => s + d.totPages, 0);
        for (i = 0; i < numNodes; i++) {
          if (ni.meminfo !== 0n) {
            const rec = new Uint8Array(16);
            dv(rec).setBigUint64(0, BigInt(hv.totalPages) << 12n, true);
            dv(rec).setBigUint64(8, BigInt(Math.max(0, hv.totalPages - used)) << 12n, true);
            if (!hv.copyToGuest(name, ni.meminfo + BigInt(i * 16), rec, `meminfo[${i}]`)) return E('EFAULT');
          }
          if (ni.distance !== 0n) {
            const row = new Uint8Array(numNodes * 4);
            for (let j = 0; j < numNodes; j++) dv(row).setUint32(j * 4, i === j ? 10 : 20, true);
            if (!hv.copyToGuest(name, ni.distance + BigInt(i * numNodes * 4), row, `distance[${i * numNodes}..${(i + 1) * numNodes})`)) return E('EFAULT');
          }
        }
      } else {
        i = numNodes;
      }
      if (ni.num_nodes !== i) {
        encode(xen_sysctl_numainfo, v, P, { num_nodes: i });
        if (!hv.copyToGuest(name, uSysctl + BigInt(P), u32le(i), 'arg0 u.numainfo.num_nodes')) return E('EFAULT');
      }
      return OK;
    }
    default:
      throw new Error(`cpuSysctl: cmd ${cmd}`);
  }
}

// ---- hvm_op: xen/arch/x86/hvm/hvm.c do_hvm_op ---------------------------------------------------

/** Deprecated parameters: hvm_allow_get_param and hvm_allow_set_param refuse them (-EINVAL). */
const HVM_PARAM_DEPRECATED = new Set<number>([
  HVM_PARAM.PAE_ENABLED,
  HVM_PARAM.DM_DOMAIN,
  HVM_PARAM.MEMORY_EVENT_CR0,
  HVM_PARAM.MEMORY_EVENT_CR3,
  HVM_PARAM.MEMORY_EVENT_CR4,
  HVM_PARAM.MEMORY_EVENT_INT3,
  HVM_PARAM.NESTEDHVM,
  HVM_PARAM.MEMORY_EVENT_SINGLE_STEP,
  HVM_PARAM.BUFIOREQ_EVTCHN,
  HVM_PARAM.MEMORY_EVENT_MSR,
]);

/** Parameters hvm_allow_set_param lets change only once (a different non-zero value: -EEXIST). */
const HVM_PARAM_SET_ONCE = new Set<number>([
  HVM_PARAM.VIRIDIAN,
  HVM_PARAM.IOREQ_PFN,
  HVM_PARAM.BUFIOREQ_PFN,
  HVM_PARAM.IOREQ_SERVER_PFN,
  HVM_PARAM.NR_IOREQ_SERVER_PAGES,
  HVM_PARAM.ALTP2M,
  HVM_PARAM.MCA_CAP,
]);

function hvmOp(hv: MockHypervisor, args: readonly bigint[], begin: Begin): bigint {
  const cmd = Number(BigInt.asUintN(32, args[0]!));
  const arg = args[1]!;
  const name = `hvm_op.${nameOf(HVMOP, cmd) ?? cmd}`;
  begin(name);
  if (cmd !== HVMOP.get_param && cmd !== HVMOP.set_param) return hv.unmodelled(name, `hvm_op cmd ${cmd}`);

  // hvmop_get_param / hvmop_set_param
  const b = hv.copyFromGuest(name, arg, xen_hvm_param.size, 'arg1 (struct xen_hvm_param)');
  if (!b) return E('EFAULT');
  const a = decode(xen_hvm_param, dv(b));
  if (a.index >= HVM_NR_PARAMS) return E('EINVAL');
  // rcu_lock_domain_by_any_id: DOMID_SELF is the caller, the PV dom0.
  const d = hv.domain(a.domid === DOMID.SELF ? 0 : a.domid);
  if (!d) return E('ESRCH');
  // rc = -EINVAL; if ( is_hvm_domain(d) ... ): a PV target gets -EINVAL whatever the index.
  if (!d.hvm) return E('EINVAL');
  if (HVM_PARAM_DEPRECATED.has(a.index)) return E('EINVAL');

  if (cmd === HVMOP.get_param) {
    encode(xen_hvm_param, dv(b), 0, { value: d.hvmParams[a.index]! });
    return hv.copyToGuest(name, arg, b, 'arg1 (struct xen_hvm_param)') ? OK : E('EFAULT');
  }

  // hvm_allow_set_param, then hvm_set_param's per-parameter checks (the ones modelled here).
  const old = d.hvmParams[a.index]!;
  if (HVM_PARAM_SET_ONCE.has(a.index) && old !== 0n && a.value !== old) return E('EEXIST');
  const invalid =
    (a.index === HVM_PARAM.TIMER_MODE && a.value > 3n) || // > HVMPTM_one_missed_tick_pending
    (a.index === HVM_PARAM.ACPI_S_STATE && a.value !== 0n && a.value !== 3n) ||
    (a.index === HVM_PARAM.TRIPLE_FAULT_REASON && a.value > 5n) || // > SHUTDOWN_MAX
    (a.index === HVM_PARAM.X87_FIP_WIDTH && a.value !== 0n && a.value !== 4n && a.value !== 8n) ||
    (a.index === HVM_PARAM.NR_IOREQ_SERVER_PAGES && (a.value === 0n || a.value > 64n));
  if (invalid) return E('EINVAL');
  d.hvmParams[a.index] = a.value;
  hv.effect(name, 'hvm.param', { domid: d.domid, index: a.index, value: a.value });
  return OK; // nothing is copied back
}

/** A vcpu that is up runs while its domain is not paused (getvcpuinfo's `running`). */
function syncRunning(d: MockDomain): void {
  if (!d.hvmState) return;
  for (const vc of d.vcpus) if (vc && vc.online && vc.initialised) vc.running = !d.paused;
}

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
