// The mock's domctls on vcpus, affinity, time offset, HVM and vcpu context.

import { decode, encode } from '../../layout.js';
import { DOMCTL } from '../../hypercalls/numbers.js';
import {
  DOMCTL_PAYLOAD_OFFSET,
  vcpu_guest_context,
  xen_domctl_getvcpuinfo,
  xen_domctl_hvmcontext,
  xen_domctl_settimeoffset,
  xen_domctl_vcpuaffinity,
  xen_domctl_vcpucontext,
  xenctl_bitmap,
} from '../../hypercalls/structs.js';
import { XEN_VCPUAFFINITY } from '../../hypercalls/values.js';
import type { Decoded } from '../../layout.js';
import type { MockHypervisor } from '../hypervisor.js';
import { MockDomain, vcpuContextFor } from '../world.js';
import { E, OK } from './common.js';

/**
 * The domctls on vcpus and contexts, each in its Xen function's order. `v` is do_domctl's local
 * copy of the struct (results go into it for the copy-back); returns ret and whether the
 * struct is copied back.
 */
export function vcpuAndContextDomctl(hv: MockHypervisor, name: string, cmd: number, d: MockDomain, v: DataView): { ret: bigint; copyback: boolean } {
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
export function vcpuAffinityDomctl(hv: MockHypervisor, name: string, cmd: number, d: MockDomain, v: DataView): bigint {
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
