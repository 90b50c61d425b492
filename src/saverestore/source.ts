// The source side of save and migrate: what the domain is (checked up front), which of its
// frames hold data, and copying them out in batches through read-only foreign mappings.
//
// Facts from libxenguest (xen-project/xen RELEASE-4.17.7, tools/libs/guest):
// - xg_sr_save_x86_hvm.c x86_hvm_setup: the p2m size of an HVM guest is xc_domain_nr_gpfns,
//   i.e. XENMEM_maximum_gpfn + 1.
// - xg_sr_save.c write_batch: each batch of up to 1024 pfns is typed with getpageframeinfo3
//   (the call the original EFAULT hit), frames typed XTAB (a p2m hole), BROKEN or XALLOC carry
//   no data, the rest are mapped read-only and copied; a frame that fails to map is an error.
// - xg_sr_save_x86_hvm.c write_hvm_params: the parameters a restore needs, saved only when
//   non-zero; write_hvm_context: the whole hvm_save record stream.

import { ErrorCodes, XencallError } from '../errors.js';
import { XEN_DOMCTL_CDF, XEN_DOMCTL_PFINFO, XEN_PAGE_SIZE, XEN_SYSCTL_PHYSCAP } from '../hypercalls/numbers.js';
import { HVM_PARAM } from '../hypercalls/values.js';
import { uuidToBytes } from '../hypercalls/schemas.js';
import type { Xencall } from '../xencall.js';
import type { DomainInfo } from '../ops/domctl.js';
import type { DomainRecord } from './image.js';

/** getpageframeinfo3's batch limit (arch_do_domctl: num > 1024 is -E2BIG). */
export const PAGE_BATCH = 1024;

/** The HVM parameters libxenguest saves (write_hvm_params), in its order. */
export const SAVED_HVM_PARAMS: readonly number[] = [
  HVM_PARAM.STORE_PFN,
  HVM_PARAM.IOREQ_PFN,
  HVM_PARAM.BUFIOREQ_PFN,
  HVM_PARAM.PAGING_RING_PFN,
  HVM_PARAM.MONITOR_RING_PFN,
  HVM_PARAM.SHARING_RING_PFN,
  HVM_PARAM.VM86_TSS_SIZED,
  HVM_PARAM.CONSOLE_PFN,
  HVM_PARAM.ACPI_IOPORTS_LOCATION,
  HVM_PARAM.VIRIDIAN,
  HVM_PARAM.IDENT_PT,
  HVM_PARAM.VM_GENERATION_ID_ADDR,
  HVM_PARAM.IOREQ_SERVER_PFN,
  HVM_PARAM.NR_IOREQ_SERVER_PAGES,
  HVM_PARAM.X87_FIP_WIDTH,
  HVM_PARAM.MCA_CAP,
];

/** A guest save/restore cannot handle; `reason` is one word to match on, the message says why. */
export class GuestUnsupportedError extends XencallError {
  constructor(
    readonly domid: number,
    readonly reason: 'self' | 'dying' | 'shutdown' | 'pv' | 'no-log-dirty',
    message: string,
  ) {
    super(ErrorCodes.GUEST_UNSUPPORTED, `domain ${domid} cannot be saved or migrated: ${message}`);
  }
}

export interface SourceDomain {
  info: DomainInfo;
  record: DomainRecord;
  /** XENMEM_maximum_gpfn + 1: gfns 0..p2mSize-1 are scanned. */
  p2mSize: number;
}

/**
 * Reads what the domain is and refuses, before anything changes, a domain the loop cannot handle:
 * dom0 itself, a dying or shut-down domain, a PV guest, or (live) a guest whose paging mode has
 * no log-dirty support on this Xen.
 */
export async function inspectSource(xc: Xencall, domid: number, live: boolean, signal?: AbortSignal): Promise<SourceDomain> {
  if (domid === 0) throw new GuestUnsupportedError(domid, 'self', 'dom0 runs this toolstack; it cannot save itself');
  const info = await xc.domctl.getdomaininfo({ domain: domid }, { signal });
  if (info.dying) throw new GuestUnsupportedError(domid, 'dying', 'it is being destroyed (XEN_DOMINF_dying)');
  if (info.shutdown) throw new GuestUnsupportedError(domid, 'shutdown', `it has shut down (reason ${info.shutdown_reason}); there is no running state to save`);
  const caps = (await xc.sysctl.physinfo({}, { signal })).capabilities;
  if (!info.hvm_guest) {
    const shadow = (caps & XEN_SYSCTL_PHYSCAP.shadow) !== 0;
    throw new GuestUnsupportedError(
      domid,
      'pv',
      'it is a PV guest: xencall saves HVM and PVH guests only (a PV image needs its page tables and p2m canonicalised)' +
        (shadow ? '' : ', and PV log-dirty needs shadow paging, which this Xen was built without (physinfo has no XEN_SYSCTL_PHYSCAP_shadow)'),
    );
  }
  if (live && !info.hap && (caps & XEN_SYSCTL_PHYSCAP.shadow) === 0) {
    throw new GuestUnsupportedError(domid, 'no-log-dirty', 'it runs on shadow paging and this Xen has none: log-dirty tracking, which a live save needs, is unavailable');
  }
  const maxGpfn = await xc.memory_op.maximum_gpfn({ domid }, { signal });
  const pool = await xc.domctl.shadow_op.get_allocation({ domain: domid }, { signal });
  const version = await xc.xen_version.version({}, { signal });
  const p2mSize = Number(maxGpfn) + 1;
  const record: DomainRecord = {
    source_domid: domid,
    xen_major: version.major,
    xen_minor: version.minor,
    page_size: XEN_PAGE_SIZE,
    cdf_flags: (info.hvm_guest ? XEN_DOMCTL_CDF.hvm : 0) | (info.hap ? XEN_DOMCTL_CDF.hap : 0),
    emulation_flags: info.arch_config.emulation_flags,
    misc_flags: info.arch_config.misc_flags,
    max_vcpus: info.max_vcpu_id + 1,
    // Xen does not report these through any domctl in 4.17: libxl's defaults for a PVH/HVM guest.
    max_evtchn_port: 1023,
    max_grant_frames: -1,
    max_maptrack_frames: -1,
    grant_opts: 1,
    max_mem_kb: info.max_pages * BigInt(XEN_PAGE_SIZE / 1024),
    p2m_size: BigInt(p2mSize),
    tot_pages: info.tot_pages,
    handle: uuidToBytes(info.handle),
    paging_pool_mb: pool.mb,
    ssidref: info.ssidref,
    reserved: 0n,
  };
  return { info, record, p2mSize };
}

/** Frames whose type says they carry data (write_batch's page_type_has_stream_data). */
function hasData(type: number): boolean {
  const t = type >>> 0;
  return t !== XEN_DOMCTL_PFINFO.XTAB && t !== XEN_DOMCTL_PFINFO.BROKEN && t !== XEN_DOMCTL_PFINFO.XALLOC;
}

/**
 * Copies the given frames out, at most PAGE_BATCH at a time: types first (holes skipped), then
 * one read-only mapping per batch, handed to `deliver` and unmapped when it returns. Returns the
 * number of pages delivered.
 */
export async function copyOut(
  xc: Xencall,
  domid: number,
  gfns: Uint32Array,
  deliver: (gfns: BigUint64Array, data: Uint8Array) => Promise<void>,
  signal?: AbortSignal,
): Promise<number> {
  let sent = 0;
  const selected = new BigUint64Array(PAGE_BATCH);
  // A gfn's low and high 32-bit halves (x86-64 is little-endian); gfns here fit in the low half.
  const selected32 = new Uint32Array(selected.buffer);
  for (let at = 0; at < gfns.length; at += PAGE_BATCH) {
    if (signal?.aborted) throw new XencallError(ErrorCodes.ABORTED, `copying domain ${domid}'s memory was aborted`, { cause: signal.reason });
    const batch = gfns.subarray(at, at + PAGE_BATCH);
    const n = batch.length;
    // The synchronous call: a batch takes a few milliseconds in Xen, while in a dom0 with one
    // vcpu and a running guest each hand-off to a worker thread and back costs tens of them
    // (docs/performance.md). The event loop gets its turn between batches instead.
    const { types } = xc.sync.domctl.getpageframeinfo3({ domain: domid, gfns: batch });
    let keep = 0;
    selected32.fill(0);
    for (let i = 0; i < n; i++) if (hasData(types[i]!)) selected32[2 * keep++] = batch[i]!;
    if (keep > 0) {
      const list = selected.slice(0, keep);
      const map = xc.foreignMemory.map(domid, list);
      try {
        const bad = map.errors.findIndex((e) => e !== 0);
        if (bad >= 0) {
          throw new XencallError(ErrorCodes.HYPERCALL, `domain ${domid}: gfn ${list[bad]} is typed as memory but could not be mapped (errno ${-map.errors[bad]!})`);
        }
        await deliver(list, map.bytes);
        sent += keep;
      } finally {
        map.unmap();
      }
    }
    await yieldToLoop();
  }
  return sent;
}

/** Lets timers, I/O and abort listeners run between batches of synchronous hypercalls. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The HVM parameters to carry over: the non-zero ones of SAVED_HVM_PARAMS. */
export async function readHvmParams(xc: Xencall, domid: number, signal?: AbortSignal): Promise<Map<number, bigint>> {
  const out = new Map<number, bigint>();
  for (const index of SAVED_HVM_PARAMS) {
    if (signal?.aborted) throw new XencallError(ErrorCodes.ABORTED, `reading domain ${domid}'s HVM params was aborted`, { cause: signal.reason });
    const { value } = xc.sync.hvm_op.get_param({ domid, index });
    if (value !== 0n) out.set(index, value);
  }
  return out;
}
