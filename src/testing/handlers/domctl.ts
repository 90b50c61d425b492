// The mock's domctl: xen/common/domctl.c do_domctl, xen/arch/x86/domctl.c arch_do_domctl (the
// vcpu, affinity and context sub-ops are in domctl-vcpu.ts, the paging ones in ../paging.ts).

import { decode, encode } from '../../layout.js';
import {
  DOMCTL,
  DOMID,
  HYPERCALL,
  SHADOW_OP,
  XEN_DOMCTL_INTERFACE_VERSION,
  XEN_DOMCTL_CDF,
  XEN_DOMINF,
} from '../../hypercalls/numbers.js';
import {
  DOMCTL_PAYLOAD_OFFSET,
  xen_domctl,
  xen_domctl_createdomain,
  xen_domctl_getdomaininfo,
  xen_domctl_getpageframeinfo3,
  xen_domctl_max_mem,
  xen_domctl_setdomainhandle,
  xen_domctl_max_vcpus,
} from '../../hypercalls/structs.js';
import { XEN_DOMCTL_GRANT, XEN_X86_EMU, XEN_X86_MISC } from '../../hypercalls/values.js';
import type { Decoded } from '../../layout.js';
import type { MockHypervisor } from '../hypervisor.js';
import { DEFAULT_MAX_GRANT_FRAMES, MAX_CONTROLLER_PAUSE_COUNT, MockDomain } from '../world.js';
import { pagingDomctl } from '../paging.js';
import { E, OK, RESTARTED, nameOf, dv, syncRunning, type Begin } from './common.js';
import { vcpuAndContextDomctl } from './domctl-vcpu.js';

export function domctl(hv: MockHypervisor, args: readonly bigint[], begin: Begin): bigint {
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
export function domainInfo(hv: MockHypervisor, d: MockDomain) {
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
