// Typed domctl calls. Each validates its arguments with the row's schema (in index.ts), builds
// struct xen_domctl, issues it through the retry runner and decodes what Xen wrote back.

import { u64At, type HypercallBuffer, type PageViews } from '../buffers.js';
import { HypercallError, ValidationError, type XencallError } from '../errors.js';
import { XEN_DOMINF, SHADOW_OP, XEN_DOMCTL_SHADOW } from '../hypercalls/numbers.js';
import { bytesToUuid } from '../hypercalls/schemas.js';
import {
  xen_arch_domainconfig,
  xen_domctl_createdomain,
  xen_domctl_getdomaininfo,
  xen_domctl_getpageframeinfo3,
  xen_domctl_max_mem,
  xen_domctl_setdomainhandle,
  xen_domctl_max_vcpus,
  xen_domctl_shadow_op,
  vcpu_guest_context,
  xen_domctl_getvcpuinfo,
  xen_domctl_hvmcontext,
  xen_domctl_settimeoffset,
  xen_domctl_vcpuaffinity,
  xen_domctl_vcpucontext,
  xen_domctl,
} from '../hypercalls/structs.js';
import { XEN_VCPUAFFINITY } from '../hypercalls/values.js';
import { decode, type Decoded } from '../layout.js';
import type { Row } from '../hypercalls/row.js';
import type { Program } from '../retry/runner.js';
import { allocAll, cpuIdCount, domctl, domctlOp, freeAll, hiddenFault, lowWords, syntheticError, typedOp, withBuffers, writeU64s, type ArgsOut, type OpCtx } from './helpers.js';
import { describeFinish, finishPending, mayHaveLeftPending, withFinding, type FinishOutcome } from './log-dirty.js';


export interface DomainInfo {
  domid: number;
  /** Raw XEN_DOMINF_* flags. */
  flags: number;
  dying: boolean;
  shutdown: boolean;
  paused: boolean;
  blocked: boolean;
  running: boolean;
  hvm_guest: boolean;
  debugged: boolean;
  xs_domain: boolean;
  hap: boolean;
  /** SHUTDOWN_* code, meaningful when `shutdown` is set. */
  shutdown_reason: number;
  tot_pages: bigint;
  max_pages: bigint;
  outstanding_pages: bigint;
  shr_pages: bigint;
  paged_pages: bigint;
  shared_info_frame: bigint;
  /** Nanoseconds of CPU time over all vcpus. */
  cpu_time: bigint;
  nr_online_vcpus: number;
  max_vcpu_id: number;
  ssidref: number;
  /** The domain handle as a UUID string. */
  handle: string;
  cpupool: number;
  gpaddr_bits: number;
  /** xen_arch_domainconfig: XEN_X86_EMU_* emulation flags and misc flags the domain was created with. */
  arch_config: { emulation_flags: number; misc_flags: number };
}

/** Where getdomaininfo's fields are: offsets from the probe-checked layout, read once. */
const GDI = Object.fromEntries(Object.entries(xen_domctl_getdomaininfo.fields).map(([k, f]) => [k, f.offset])) as Record<keyof typeof xen_domctl_getdomaininfo.fields, number>;
const ARCH = xen_arch_domainconfig.fields;
const GDI_EMULATION = GDI.arch_config + ARCH.emulation_flags.offset;
const GDI_MISC = GDI.arch_config + ARCH.misc_flags.offset;

/** getdomaininfo's 64-bit fields, in the order LastSeen keeps them. */
const GDI_U64 = ['tot_pages', 'max_pages', 'outstanding_pages', 'shr_pages', 'paged_pages', 'shared_info_frame', 'cpu_time'] as const;
const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

/**
 * What was last read for one domid: the raw words of its handle and of its 64-bit fields, and
 * the string and bigints made from them. Making a bigint is a runtime call and formatting a UUID
 * costs as much as the rest of a DomainInfo (in emulated dom0 each bigint costs microseconds),
 * while comparing words costs next to nothing, and most of a domain's fields do not change from
 * one read to the next. All zero to begin with, which is what the zero words stand for.
 */
class LastSeen {
  /** Handle words 0-3, then the low and high half of each 64-bit field. */
  readonly words = new Uint32Array(4 + 2 * GDI_U64.length);
  uuid = ZERO_UUID;
  readonly values: bigint[] = GDI_U64.map(() => 0n);

  handle(v: DataView, bytes: Uint8Array, at: number): string {
    const w = this.words;
    const w0 = v.getUint32(at, true);
    const w1 = v.getUint32(at + 4, true);
    const w2 = v.getUint32(at + 8, true);
    const w3 = v.getUint32(at + 12, true);
    if (w[0] !== w0 || w[1] !== w1 || w[2] !== w2 || w[3] !== w3) {
      w[0] = w0;
      w[1] = w1;
      w[2] = w2;
      w[3] = w3;
      this.uuid = bytesToUuid(bytes, at);
    }
    return this.uuid;
  }

  /** The 64-bit field `i` (of GDI_U64) at `at`: the bigint made last time if its words are the same. */
  u64(i: number, mem: PageViews, at: number): bigint {
    const v = mem.view;
    const lo = v.getUint32(at, true);
    const hi = v.getUint32(at + 4, true);
    const w = this.words;
    const k = 4 + 2 * i;
    if (w[k] !== lo || w[k + 1] !== hi) {
      w[k] = lo;
      w[k + 1] = hi;
      this.values[i] = u64At(mem, at);
    }
    return this.values[i]!;
  }
}

/** Per domid (below 0x7ff0, so at most that many), shared by every handle: the values are pure functions of the words. */
const lastSeen = new Map<number, LastSeen>();

/**
 * The DomainInfo of the struct xen_domctl_getdomaininfo at `b` of a buffer, read straight from
 * it: one object, no intermediate decode. Each field is read with its layout type's width
 * (test/typed-calls.test.ts compares it with the layout's decoder); the 64-bit ones and the
 * handle are made again only where their words changed since the domid was last read (LastSeen).
 */
export function domainInfoAt(mem: PageViews, b: number): DomainInfo {
  const { view: v, bytes } = mem;
  const f = v.getUint32(b + GDI.flags, true);
  const domid = v.getUint16(b + GDI.domain, true);
  let seen = lastSeen.get(domid);
  if (!seen) lastSeen.set(domid, (seen = new LastSeen()));
  return {
    domid,
    flags: f,
    dying: (f & XEN_DOMINF.dying) !== 0,
    shutdown: (f & XEN_DOMINF.shutdown) !== 0,
    paused: (f & XEN_DOMINF.paused) !== 0,
    blocked: (f & XEN_DOMINF.blocked) !== 0,
    running: (f & XEN_DOMINF.running) !== 0,
    hvm_guest: (f & XEN_DOMINF.hvm_guest) !== 0,
    debugged: (f & XEN_DOMINF.debugged) !== 0,
    xs_domain: (f & XEN_DOMINF.xs_domain) !== 0,
    hap: (f & XEN_DOMINF.hap) !== 0,
    shutdown_reason: (f >>> XEN_DOMINF.shutdownshift) & XEN_DOMINF.shutdownmask,
    tot_pages: seen.u64(0, mem, b + GDI.tot_pages),
    max_pages: seen.u64(1, mem, b + GDI.max_pages),
    outstanding_pages: seen.u64(2, mem, b + GDI.outstanding_pages),
    shr_pages: seen.u64(3, mem, b + GDI.shr_pages),
    paged_pages: seen.u64(4, mem, b + GDI.paged_pages),
    shared_info_frame: seen.u64(5, mem, b + GDI.shared_info_frame),
    cpu_time: seen.u64(6, mem, b + GDI.cpu_time),
    nr_online_vcpus: v.getUint32(b + GDI.nr_online_vcpus, true),
    max_vcpu_id: v.getUint32(b + GDI.max_vcpu_id, true),
    ssidref: v.getUint32(b + GDI.ssidref, true),
    handle: seen.handle(v, bytes, b + GDI.handle),
    cpupool: v.getUint32(b + GDI.cpupool, true),
    gpaddr_bits: v.getUint8(b + GDI.gpaddr_bits),
    arch_config: { emulation_flags: v.getUint32(b + GDI_EMULATION, true), misc_flags: v.getUint32(b + GDI_MISC, true) },
  };
}

const nothing = (): void => undefined;
/** The domain of a domctl whose arguments name it `domain`. */
const byDomain = (a: { domain: number }): number => a.domain;

export interface VcpuInfo {
  vcpu: number;
  online: boolean;
  blocked: boolean;
  running: boolean;
  /** Nanoseconds the vcpu has run. */
  cpu_time: bigint;
  /** The physical cpu it runs on (or last ran on). */
  cpu: number;
}

export interface VcpuAffinity {
  /** Physical cpus in the hard map, ascending; absent when it was not asked for. */
  hard?: number[];
  /** Physical cpus in the soft map, ascending; absent when it was not asked for. */
  soft?: number[];
}

export type VcpuGuestContext = Decoded<typeof vcpu_guest_context.fields>;

export interface VcpuContext {
  /** The raw vcpu_guest_context Xen copied out (5168 bytes on x86_64). */
  bytes: Uint8Array;
  /**
   * Its fields decoded as the native x86_64 layout: right for 64-bit PV and HVM guests. A 32-bit
   * PV guest's context is the compat layout (Xen copies c.cmp): read `bytes` for those.
   */
  context: VcpuGuestContext;
}

export interface PageFrameTypes {
  /** Per gfn asked for, in order: its XEN_DOMCTL_PFINFO_* type (numbers.XEN_DOMCTL_PFINFO). */
  types: Uint32Array;
}

export interface ShadowBitmapResult {
  /**
   * One bit per page, page 0 in bit 0 of byte 0: a copy, or with `bitmap` given a view of the
   * caller's buffer; empty with `bitmap: null`.
   */
  bitmap: Uint8Array;
  /** Pages Xen reported on (it lowers `pages` when the domain is smaller). */
  pages: bigint;
  fault_count: number;
  dirty_count: number;
  /**
   * Hypercall 49 calls that finished the op after an EFAULT left it pending (0: it completed in
   * one call). All but the last of them faulted.
   */
  continuations: number;
}


export const DOMCTL_OPS = {
  getdomaininfo: domctlOp('domctl.getdomaininfo', {
    layout: xen_domctl_getdomaininfo,
    domain: byDomain,
    read: domainInfoAt,
    answer: ({ domain, out }, a, row) => {
      // Xen answers for the next domain at or above the id asked for; a typed lookup by id must
      // not hand back some other domain.
      if (domain !== a.domain) {
        throw syntheticError(row, 'ESRCH', `domain ${a.domain} does not exist (Xen answered for domain ${domain}, the next one)`);
      }
      return out;
    },
  }),

  createdomain: domctlOp('domctl.createdomain', {
    layout: xen_domctl_createdomain,
    domain: byDomain,
    payload: ({ domain: _, ...config }: Decoded<typeof xen_domctl_createdomain.fields> & { domain: number }) => config,
    answer: (r) => ({ domid: r.domain }),
  }),

  destroydomain: typedOp('domctl.destroydomain', function* (ctx, a, row) {
    try {
      yield* domctl(ctx, row, a.domain, undefined, {});
    } catch (e) {
      // A re-issue after EFAULT that finds the domain gone means an earlier slice finished it.
      if (e instanceof HypercallError && e.errnoName === 'ESRCH' && e.attempts > 1) return;
      throw e;
    }
  }),

  pausedomain: domctlOp('domctl.pausedomain', { domain: byDomain, answer: nothing }),

  unpausedomain: domctlOp('domctl.unpausedomain', { domain: byDomain, answer: nothing }),

  setdomainhandle: domctlOp('domctl.setdomainhandle', {
    layout: xen_domctl_setdomainhandle,
    domain: byDomain,
    payload: (a) => ({ handle: a.handle }),
    answer: nothing,
  }),

  max_mem: domctlOp('domctl.max_mem', {
    layout: xen_domctl_max_mem,
    domain: byDomain,
    payload: (a) => ({ max_memkb: a.max_memkb }),
    answer: nothing,
  }),

  max_vcpus: domctlOp('domctl.max_vcpus', {
    layout: xen_domctl_max_vcpus,
    domain: byDomain,
    payload: (a) => ({ max: a.max }),
    answer: nothing,
  }),

  getpageframeinfo3: domctlOp('domctl.getpageframeinfo3', {
    layout: xen_domctl_getpageframeinfo3,
    domain: byDomain,
    buffers: (a) => [a.gfns.length * 8],
    payload: (a, [arr]) => {
      writeU64s(arr!, a.gfns);
      return { num: BigInt(a.gfns.length), array: arr!.address };
    },
    // Xen overwrote each gfn with its XEN_DOMCTL_PFINFO_* type, a 64-bit slot whose upper half
    // is zero: the types are XEN_DOMCTL_PFINFO_* flags in bits 28-31 (arch_do_domctl lines
    // 267-317 at RELEASE-4.17.7), so the low halves are the whole answer.
    answer: (_r, a, _row, [arr]): PageFrameTypes => ({ types: lowWords(arr!, a.gfns.length) }),
  }),

  getvcpuinfo: domctlOp('domctl.getvcpuinfo', {
    layout: xen_domctl_getvcpuinfo,
    domain: byDomain,
    payload: (a) => ({ vcpu: a.vcpu }),
    answer: ({ out }, a): VcpuInfo => ({ vcpu: a.vcpu, online: out.online !== 0, blocked: out.blocked !== 0, running: out.running !== 0, cpu_time: out.cpu_time, cpu: out.cpu }),
  }),

  setvcpuaffinity: typedOp(
    'domctl.setvcpuaffinity',
    function* (ctx, a, row) {
      const flags = (a.hard ? XEN_VCPUAFFINITY.HARD : 0) | (a.soft ? XEN_VCPUAFFINITY.SOFT : 0) | (a.force ? XEN_VCPUAFFINITY.FORCE : 0);
      return yield* vcpuAffinity(ctx, row, a.domain, a.vcpu, flags, a);
    },
  ),

  getvcpuaffinity: typedOp('domctl.getvcpuaffinity', function* (ctx, a, row) {
    return yield* vcpuAffinity(ctx, row, a.domain, a.vcpu, XEN_VCPUAFFINITY.HARD | XEN_VCPUAFFINITY.SOFT, {});
  }),

  settimeoffset: domctlOp('domctl.settimeoffset', {
    layout: xen_domctl_settimeoffset,
    domain: byDomain,
    payload: (a) => ({ time_offset_seconds: a.time_offset_seconds }),
    answer: nothing,
  }),

  gethvmcontext: typedOp('domctl.gethvmcontext', function* (ctx, a, row) {
    // A NULL buffer asks for the size (hvm_save_size, an upper bound); the second call fills
    // the buffer and says how much it used.
    const probe = yield* domctl(ctx, row, a.domain, xen_domctl_hvmcontext, { size: 0, buffer: 0n });
    const size = probe.out.size;
    return yield* withBuffers(ctx, [size], function* ([buf]) {
      const { out } = yield* domctl(ctx, row, a.domain, xen_domctl_hvmcontext, { size, buffer: buf!.address }, [buf!]);
      return { bytes: buf!.read(0, out.size) };
    });
  }),

  sethvmcontext: typedOp('domctl.sethvmcontext', function* (ctx, a, row) {
    return yield* withBuffers(ctx, [a.context.length], function* ([buf]) {
      buf!.write(a.context);
      yield* domctl(ctx, row, a.domain, xen_domctl_hvmcontext, { size: a.context.length, buffer: buf!.address }, [buf!]);
      return nothing();
    });
  }),

  getvcpucontext: typedOp('domctl.getvcpucontext', function* (ctx, a, row) {
    return yield* withBuffers(ctx, [vcpu_guest_context.size], function* ([buf]) {
      yield* domctl(ctx, row, a.domain, xen_domctl_vcpucontext, { vcpu: a.vcpu, ctxt: buf!.address }, [buf!]);
      const bytes = buf!.read();
      const r: VcpuContext = { bytes, context: decode(vcpu_guest_context, new DataView(bytes.buffer, bytes.byteOffset, bytes.length)) };
      return r;
    });
  }),

  shadow_op: {
    off: typedOp('domctl.shadow_op.off', function* (ctx, a, row) {
      try {
        yield* domctl(ctx, row, a.domain, xen_domctl_shadow_op, { op: SHADOW_OP.OFF });
      } catch (e) {
        // -EBUSY at once: another op (a CLEAN or PEEK whose continuation's re-entry faulted)
        // is pending, the domain held paused, and every shadow_op but GET_ALLOCATION refused
        // until hypercall 49 finishes it (paging_domctl lines 710-722). OFF is the way out of
        // log-dirty mode whatever state it is in, so it finishes that op first.
        const busy = e instanceof HypercallError && e.errnoName === 'EBUSY' && e.attempts === 1;
        if (!busy && !mayHaveLeftPending(e)) throw e;
        // Freeing the bitmap is preemptible too: a faulted re-entry leaves the OFF pending, the
        // domain paused, and the runner's re-issue met -EBUSY. Finish it; OFF is then done.
        const ops = busy ? [SHADOW_OP.CLEAN, SHADOW_OP.PEEK, SHADOW_OP.OFF] : [SHADOW_OP.OFF];
        let found: FinishOutcome | undefined;
        let op: number = SHADOW_OP.OFF;
        // pages 0: a CLEAN or PEEK finished here copies nothing and clears no more leaves (the
        // loop stops at sc->pages, paging_log_dirty_op line 483); OFF frees them all next.
        for (op of ops) {
          const req = { domain: a.domain, op, pages: 0n, mode: 0, bitmap: null };
          found = yield* withBuffers(ctx, [xen_domctl.size], ([s]) => finishPending(ctx, s!, req));
          if (found.outcome !== 'none') break;
        }
        if (found!.outcome === 'finished' && op === SHADOW_OP.OFF) return nothing();
        if (busy && found!.outcome === 'none') throw withFinding(e as XencallError, 'hypercall 49 found no CLEAN, PEEK or OFF pending.');
        if (!(e instanceof HypercallError)) throw withFinding(e as XencallError, describeFinish(op, found!));
        // Nothing pending now; OFF is idempotent.
        yield* domctl(ctx, row, a.domain, xen_domctl_shadow_op, { op: SHADOW_OP.OFF });
      }
      return nothing();
    }),
    enable_logdirty: domctlOp('domctl.shadow_op.enable_logdirty', {
      layout: xen_domctl_shadow_op,
      domain: byDomain,
      payload: () => ({ op: SHADOW_OP.ENABLE_LOGDIRTY }),
      answer: nothing,
    }),
    clean: typedOp('domctl.shadow_op.clean', function* (ctx, a, row) {
      return yield* logDirtyRead(ctx, row, SHADOW_OP.CLEAN, a);
    }),
    peek: typedOp('domctl.shadow_op.peek', function* (ctx, a, row) {
      return yield* logDirtyRead(ctx, row, SHADOW_OP.PEEK, a);
    }),
    get_allocation: domctlOp('domctl.shadow_op.get_allocation', {
      layout: xen_domctl_shadow_op,
      domain: byDomain,
      payload: () => ({ op: SHADOW_OP.GET_ALLOCATION }),
      answer: (r) => ({ mb: r.out.mb }),
    }),
    set_allocation: domctlOp('domctl.shadow_op.set_allocation', {
      layout: xen_domctl_shadow_op,
      domain: byDomain,
      payload: (a) => ({ op: SHADOW_OP.SET_ALLOCATION, mb: a.mb }),
      answer: (r) => ({ mb: r.out.mb }),
    }),
  },
};

/** CLEAN's and PEEK's arguments, as their rows' schema gives them (the two share it). */
type LogDirtyReadArgs = ArgsOut<'domctl.shadow_op.clean'>;

/**
 * CLEAN or PEEK. Neither leaves a continuation pending behind it: after an EFAULT (which may
 * have come from a re-entry that left the op pending, the domain paused) hypercall 49 is asked
 * to finish it. A CLEAN it finishes is complete, its bitmap the first slices' leaves plus the
 * rest, so its result is returned; otherwise the CLEAN's refusal is thrown, saying what was
 * found. A PEEK changes nothing, so once nothing is pending it is read again.
 */
function* logDirtyRead(ctx: OpCtx, row: Row, op: number, a: LogDirtyReadArgs): Program<ShadowBitmapResult> {
  const bitmapBytes = Number((a.pages + 7n) / 8n);
  const mode = a.final ? XEN_DOMCTL_SHADOW.LOGDIRTY_FINAL : 0;
  const given = a.bitmap;
  if (given && given.size < bitmapBytes) {
    throw new ValidationError(`${row.name}.bitmap`, `holds ${given.size} bytes; ${a.pages} pages need ${bitmapBytes}`);
  }
  // The buffers are taken here rather than through withBuffers(): a generator less on every step.
  const own = allocAll(ctx.pool, given === undefined ? [bitmapBytes, xen_domctl.size] : [xen_domctl.size]);
  const struct = own.at(-1)!;
  const bm = given === undefined ? own[0]! : given;
  const inputs = bm ? [bm] : [];
  // The caller's buffer is zeroed, so that after a failure it holds what Xen copied out.
  given?.bytes.fill(0, 0, bitmapBytes);
  try {
    const result = (out: { pages: bigint; stats: { fault_count: number; dirty_count: number } }, continuations: number): ShadowBitmapResult => ({
      bitmap: !bm ? new Uint8Array(0) : given ? bm.bytes.subarray(0, bitmapBytes) : bm.read(0, bitmapBytes),
      pages: out.pages,
      fault_count: out.stats.fault_count,
      dirty_count: out.stats.dirty_count,
      continuations,
    });
    for (let reads = 1; ; reads++) {
      try {
        const r = yield* domctl(ctx, row, a.domain, xen_domctl_shadow_op, { op, mode, dirty_bitmap: bm?.address ?? 0n, pages: a.pages }, inputs);
        return result(r.out, 0);
      } catch (e) {
        if (!mayHaveLeftPending(e)) throw e;
        // The bitmap is left as the failed call wrote it: a CLEAN finished now continues it.
        const f = yield* finishPending(ctx, struct, { domain: a.domain, op, pages: a.pages, mode, bitmap: bm });
        if (f.outcome === 'finished' && op === SHADOW_OP.CLEAN) return result(f.out!, f.calls);
        if (op === SHADOW_OP.CLEAN || !(e instanceof HypercallError) || reads >= 2) throw withFinding(e as XencallError, describeFinish(op, f));
        bm?.bytes.fill(0, 0, bitmapBytes);
      }
    }
  } finally {
    freeAll(ctx.pool, own);
  }
}

/**
 * set/getvcpuaffinity. The cpumaps are sized as libxc sizes them (physinfo's max_cpu_id + 1
 * bits, rounded up to bytes), plus one sentinel byte: Xen reads and writes only its own
 * nr_cpu_ids bits and zero-fills the rest of the caller's map one byte at a time
 * (bitmap_to_xenctl_bitmap). A sentinel still set after a 0 return means that map's copy-back
 * faulted and vcpu_affinity_domctl lost the -EFAULT by reassigning ret for the soft map.
 */
function* vcpuAffinity(
  ctx: OpCtx,
  row: Row,
  domain: number,
  vcpu: number,
  flags: number,
  maps: { hard?: number[]; soft?: number[] },
): Program<VcpuAffinity> {
  const ncpus = yield* cpuIdCount(ctx);
  for (const which of ['hard', 'soft'] as const) {
    const bad = maps[which]?.find((c) => c >= ncpus);
    if (bad !== undefined) throw new ValidationError(`${row.name}.${which}`, `cpu ${bad} does not exist (cpu ids are 0..${ncpus - 1})`);
  }
  const mapBytes = Math.ceil(ncpus / 8);
  const guestBytes = mapBytes + 1;
  const wantHard = (flags & XEN_VCPUAFFINITY.HARD) !== 0;
  const wantSoft = (flags & XEN_VCPUAFFINITY.SOFT) !== 0;
  for (let attempt = 1; ; attempt++) {
    const r = yield* withBuffers(ctx, [guestBytes, guestBytes], function* ([hb, sb]) {
      const fill = (buf: HypercallBuffer, cpus: number[] | undefined) => {
        const b = buf.bytes;
        b.fill(0);
        for (const c of cpus ?? []) b[c >> 3]! |= 1 << (c & 7);
        b[mapBytes] = 0xff;
      };
      fill(hb!, maps.hard);
      fill(sb!, maps.soft);
      const map = (buf: HypercallBuffer, on: boolean) => ({ bitmap: on ? buf.address : 0n, nr_bits: on ? guestBytes * 8 : 0 });
      yield* domctl(ctx, row, domain, xen_domctl_vcpuaffinity, { vcpu, flags, cpumap_hard: map(hb!, wantHard), cpumap_soft: map(sb!, wantSoft) }, [hb!, sb!]);
      const written = (buf: HypercallBuffer) => buf.bytes[mapBytes] === 0;
      if ((wantHard && !written(hb!)) || (wantSoft && !written(sb!))) return null;
      const out: VcpuAffinity = {};
      if (wantHard) out.hard = cpusOf(hb!.read(0, mapBytes), ncpus);
      if (wantSoft) out.soft = cpusOf(sb!.read(0, mapBytes), ncpus);
      return out;
    });
    if (r) return r;
    yield* hiddenFault(ctx, row, attempt, 'a cpumap');
  }
}

function cpusOf(bitmap: Uint8Array, ncpus: number): number[] {
  const out: number[] = [];
  for (let c = 0; c < ncpus; c++) if (bitmap[c >> 3]! & (1 << (c & 7))) out.push(c);
  return out;
}
