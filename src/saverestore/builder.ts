// The destination side of restore and migrate: builds a domain from a DOMAIN record, fills its
// memory batch by batch, loads its HVM params and context, and starts it. Anything that fails or
// is cancelled before start() destroys the domain: no half-built domain is ever left behind.
//
// Order, as libxenguest's restore does it (xen-project/xen RELEASE-4.17.7,
// tools/libs/guest/xg_sr_restore.c and xg_sr_restore_x86_hvm.c): the domain exists before the
// stream starts (libxl creates it: createdomain, max_vcpus, max_mem); PAGE_DATA populates the
// frames not yet populated (populate_physmap) and writes them through a writable mapping;
// HVM_PARAMS are set as they arrive (handle_hvm_params, which skips HVM_PARAM_PAE_ENABLED); at the
// end of the stream the HVM context is loaded (x86_hvm_stream_complete: sethvmcontext) and the
// domain is unpaused by the toolstack.

import { randomUUID } from 'node:crypto';
import { ErrorCodes, XencallError } from '../errors.js';
import { createDomainAdopting } from '../recovery.js';
import { XEN_PAGE_SIZE } from '../hypercalls/numbers.js';
import { HVM_PARAM } from '../hypercalls/values.js';
import type { Xencall } from '../xencall.js';
import type { DomainRecord } from './image.js';
import { GfnSet } from './gfn-set.js';

export interface BuildOptions {
  /** Domain id for the new domain; default: Xen picks one. */
  domid?: number;
  /** Handle (UUID) for the new domain; default: the source's. */
  handle?: string | Uint8Array;
  signal?: AbortSignal;
}

export class DomainBuilder {
  private readonly populated = new GfnSet();
  private started = false;
  private destroyed = false;
  /** Pages written, resends included. */
  pagesWritten = 0;

  private constructor(
    private readonly xc: Xencall,
    readonly domid: number,
    readonly record: DomainRecord,
    private readonly handle: string | Uint8Array,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /**
   * Creates the domain (paused, as createdomain leaves it) and sizes it; destroys it if sizing
   * fails. It is created under a fresh handle of its own, as the table's recovery for
   * createdomain asks: an EFAULT on createdomain's copy-back (after the domain exists; never
   * re-issued) is recovered by finding the domain by that handle and adopting it. start() gives
   * it its final handle (the source's, by default).
   */
  static async create(xc: Xencall, record: DomainRecord, options: BuildOptions = {}): Promise<DomainBuilder> {
    const { signal } = options;
    const provisional = randomUUID();
    const config = {
      ...(options.domid === undefined ? {} : { domain: options.domid }),
      handle: provisional,
      ssidref: record.ssidref,
      flags: record.cdf_flags,
      max_vcpus: record.max_vcpus,
      max_evtchn_port: record.max_evtchn_port,
      max_grant_frames: record.max_grant_frames,
      max_maptrack_frames: record.max_maptrack_frames,
      grant_opts: record.grant_opts,
      arch: { emulation_flags: record.emulation_flags, misc_flags: record.misc_flags },
    };
    const domid = await createDomainAdopting(xc, config, { signal });
    const b = new DomainBuilder(xc, domid, record, options.handle ?? record.handle, signal);
    try {
      await xc.domctl.max_vcpus({ domain: b.domid, max: record.max_vcpus }, { signal });
      await xc.domctl.max_mem({ domain: b.domid, max_memkb: record.max_mem_kb }, { signal });
      if (record.paging_pool_mb > 0) await xc.domctl.shadow_op.set_allocation({ domain: b.domid, mb: record.paging_pool_mb }, { signal });
    } catch (e) {
      await b.abort();
      throw e;
    }
    return b;
  }

  /** Writes page contents, populating frames the domain does not have yet. */
  async pages(gfns: BigUint64Array, data: Uint8Array): Promise<void> {
    this.checkBuilding();
    const fresh = new Uint32Array(gfns.length);
    let n = 0;
    for (const g of gfns) if (this.populated.add(Number(g))) fresh[n++] = Number(g);
    // Synchronous, as the source's batches are (source.ts copyOut says why).
    if (n) this.xc.sync.memory_op.populate_physmap({ domid: this.domid, gfns: fresh.subarray(0, n) });
    const map = this.xc.foreignMemory.map(this.domid, gfns, { writable: true });
    try {
      const bad = map.errors.findIndex((e) => e !== 0);
      if (bad >= 0) throw new XencallError(ErrorCodes.HYPERCALL, `domain ${this.domid}: gfn ${gfns[bad]} could not be mapped for writing (errno ${-map.errors[bad]!})`);
      map.bytes.set(data.subarray(0, gfns.length * XEN_PAGE_SIZE));
    } finally {
      map.unmap();
    }
    this.pagesWritten += gfns.length;
  }

  async hvmParams(params: ReadonlyMap<number, bigint>): Promise<void> {
    this.checkBuilding();
    for (const [index, value] of params) {
      // handle_hvm_params: PAE_ENABLED only ever carried data into hvmloader; it is not set.
      if (index === HVM_PARAM.PAE_ENABLED) continue;
      this.checkBuilding();
      this.xc.sync.hvm_op.set_param({ domid: this.domid, index, value });
    }
  }

  async hvmContext(context: Uint8Array): Promise<void> {
    this.checkBuilding();
    await this.xc.domctl.sethvmcontext({ domain: this.domid, context }, { signal: this.signal });
  }

  /** Unpauses the domain (unless `paused`); from here on it is the caller's. */
  async start(paused = false): Promise<number> {
    this.checkBuilding();
    await this.xc.domctl.setdomainhandle({ domain: this.domid, handle: this.handle }, { signal: this.signal });
    if (!paused) await this.xc.domctl.unpausedomain({ domain: this.domid }, { signal: this.signal });
    this.started = true;
    return this.domid;
  }

  /**
   * Destroys the half-built domain. Idempotent and never throws: the restore's own error is what
   * the caller needs; a failed teardown is kept in `abortError` and named in that error's message.
   */
  async abort(): Promise<void> {
    if (this.started || this.destroyed) return;
    this.destroyed = true;
    try {
      // No signal: the teardown must run even when the caller's signal is what stopped the build.
      await this.xc.domctl.destroydomain({ domain: this.domid });
    } catch (e) {
      this.abortError = e;
    }
  }

  /** Why abort() could not destroy the domain, if it could not. */
  abortError: unknown = undefined;

  private checkBuilding(): void {
    if (this.destroyed) throw new XencallError(ErrorCodes.ABORTED, `domain ${this.domid} was destroyed: the restore had failed or was cancelled`);
    if (this.started) throw new XencallError(ErrorCodes.VALIDATION, `domain ${this.domid} is already started`);
    if (this.signal?.aborted) throw new XencallError(ErrorCodes.ABORTED, `building domain ${this.domid} was aborted`, { cause: this.signal.reason });
  }
}
