// Typed domctl calls. Each validates its arguments with the row's schema (in index.ts), builds
// struct xen_domctl, issues it through the retry runner and decodes what Xen wrote back.

import type { HypercallBuffer } from '../buffers.js';
import { HypercallError, ValidationError, type XencallError } from '../errors.js';
import { XEN_DOMINF, SHADOW_OP, XEN_DOMCTL_SHADOW } from '../hypercalls/numbers.js';
import { bytesToUuid } from '../hypercalls/schemas.js';
import {
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
import { cpuIdCount, domctl, hiddenFault, lowWords, syntheticError, typedOp, withBuffers, writeU64s, type OpCtx } from './helpers.js';
import { describeFinish, finishPending, mayHaveLeftPending, withFinding } from './log-dirty.js';


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

export function toDomainInfo(d: Decoded<typeof xen_domctl_getdomaininfo.fields>): DomainInfo {
  const f = d.flags;
  return {
    domid: d.domain,
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
    tot_pages: d.tot_pages,
    max_pages: d.max_pages,
    outstanding_pages: d.outstanding_pages,
    shr_pages: d.shr_pages,
    paged_pages: d.paged_pages,
    shared_info_frame: d.shared_info_frame,
    cpu_time: d.cpu_time,
    nr_online_vcpus: d.nr_online_vcpus,
    max_vcpu_id: d.max_vcpu_id,
    ssidref: d.ssidref,
    handle: bytesToUuid(d.handle),
    cpupool: d.cpupool,
    gpaddr_bits: d.gpaddr_bits,
    arch_config: { emulation_flags: d.arch_config.emulation_flags, misc_flags: d.arch_config.misc_flags },
  };
}

const nothing = (): void => undefined;

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
  /** One bit per page, page 0 in bit 0 of byte 0. */
  bitmap: Uint8Array;
  /** Pages Xen reported on (it lowers `pages` when the domain is smaller). */
  pages: bigint;
  fault_count: number;
  dirty_count: number;
}


export const DOMCTL_OPS = {
  getdomaininfo: typedOp('domctl.getdomaininfo', function* (ctx, a: { domain: number }, row) {
    const { domain, out } = yield* domctl(ctx, row, a.domain, xen_domctl_getdomaininfo, {});
    // Xen answers for the next domain at or above the id asked for; a typed lookup by id must
    // not hand back some other domain.
    if (domain !== a.domain) {
      throw syntheticError(row, 'ESRCH', `domain ${a.domain} does not exist (Xen answered for domain ${domain}, the next one)`);
    }
    return toDomainInfo(out);
  }),

  createdomain: typedOp('domctl.createdomain', function* (ctx, a: Decoded<typeof xen_domctl_createdomain.fields> & { domain: number }, row) {
    const { domain, ...config } = a;
    const r = yield* domctl(ctx, row, domain, xen_domctl_createdomain, config);
    return { domid: r.domain };
  }),

  destroydomain: typedOp('domctl.destroydomain', function* (ctx, a: { domain: number }, row) {
    try {
      yield* domctl(ctx, row, a.domain, undefined, {});
    } catch (e) {
      // A re-issue after EFAULT that finds the domain gone means an earlier slice finished it.
      if (e instanceof HypercallError && e.errnoName === 'ESRCH' && e.attempts > 1) return;
      throw e;
    }
  }),

  pausedomain: typedOp('domctl.pausedomain', function* (ctx, a: { domain: number }, row) {
    yield* domctl(ctx, row, a.domain, undefined, {});
    return nothing();
  }),

  unpausedomain: typedOp('domctl.unpausedomain', function* (ctx, a: { domain: number }, row) {
    yield* domctl(ctx, row, a.domain, undefined, {});
    return nothing();
  }),

  setdomainhandle: typedOp('domctl.setdomainhandle', function* (ctx, a: { domain: number; handle: Uint8Array }, row) {
    yield* domctl(ctx, row, a.domain, xen_domctl_setdomainhandle, { handle: a.handle });
    return nothing();
  }),

  max_mem: typedOp('domctl.max_mem', function* (ctx, a: { domain: number; max_memkb: bigint }, row) {
    yield* domctl(ctx, row, a.domain, xen_domctl_max_mem, { max_memkb: a.max_memkb });
    return nothing();
  }),

  max_vcpus: typedOp('domctl.max_vcpus', function* (ctx, a: { domain: number; max: number }, row) {
    yield* domctl(ctx, row, a.domain, xen_domctl_max_vcpus, { max: a.max });
    return nothing();
  }),

  getpageframeinfo3: typedOp('domctl.getpageframeinfo3', function* (ctx, a: { domain: number; gfns: BigUint64Array }, row) {
    const n = a.gfns.length;
    return yield* withBuffers(ctx, [n * 8], function* ([arr]) {
      writeU64s(arr!, a.gfns);
      yield* domctl(ctx, row, a.domain, xen_domctl_getpageframeinfo3, { num: BigInt(n), array: arr!.address }, [arr!]);
      // Xen overwrote each gfn with its XEN_DOMCTL_PFINFO_* type, a 64-bit slot whose upper half
      // is zero: the types are XEN_DOMCTL_PFINFO_* flags in bits 28-31 (arch_do_domctl lines
      // 267-317 at RELEASE-4.17.7), so the low halves are the whole answer.
      const r: PageFrameTypes = { types: lowWords(arr!, n) };
      return r;
    });
  }),

  getvcpuinfo: typedOp('domctl.getvcpuinfo', function* (ctx, a: { domain: number; vcpu: number }, row) {
    const { out } = yield* domctl(ctx, row, a.domain, xen_domctl_getvcpuinfo, { vcpu: a.vcpu });
    const r: VcpuInfo = { vcpu: a.vcpu, online: out.online !== 0, blocked: out.blocked !== 0, running: out.running !== 0, cpu_time: out.cpu_time, cpu: out.cpu };
    return r;
  }),

  setvcpuaffinity: typedOp(
    'domctl.setvcpuaffinity',
    function* (ctx, a: { domain: number; vcpu: number; hard?: number[]; soft?: number[]; force: boolean }, row) {
      const flags = (a.hard ? XEN_VCPUAFFINITY.HARD : 0) | (a.soft ? XEN_VCPUAFFINITY.SOFT : 0) | (a.force ? XEN_VCPUAFFINITY.FORCE : 0);
      return yield* vcpuAffinity(ctx, row, a.domain, a.vcpu, flags, a);
    },
  ),

  getvcpuaffinity: typedOp('domctl.getvcpuaffinity', function* (ctx, a: { domain: number; vcpu: number }, row) {
    return yield* vcpuAffinity(ctx, row, a.domain, a.vcpu, XEN_VCPUAFFINITY.HARD | XEN_VCPUAFFINITY.SOFT, {});
  }),

  settimeoffset: typedOp('domctl.settimeoffset', function* (ctx, a: { domain: number; time_offset_seconds: bigint }, row) {
    yield* domctl(ctx, row, a.domain, xen_domctl_settimeoffset, { time_offset_seconds: a.time_offset_seconds });
    return nothing();
  }),

  gethvmcontext: typedOp('domctl.gethvmcontext', function* (ctx, a: { domain: number }, row) {
    // A NULL buffer asks for the size (hvm_save_size, an upper bound); the second call fills
    // the buffer and says how much it used.
    const probe = yield* domctl(ctx, row, a.domain, xen_domctl_hvmcontext, { size: 0, buffer: 0n });
    const size = probe.out.size;
    return yield* withBuffers(ctx, [size], function* ([buf]) {
      const { out } = yield* domctl(ctx, row, a.domain, xen_domctl_hvmcontext, { size, buffer: buf!.address }, [buf!]);
      return { bytes: buf!.read(0, out.size) };
    });
  }),

  sethvmcontext: typedOp('domctl.sethvmcontext', function* (ctx, a: { domain: number; context: Uint8Array }, row) {
    return yield* withBuffers(ctx, [a.context.length], function* ([buf]) {
      buf!.write(a.context);
      yield* domctl(ctx, row, a.domain, xen_domctl_hvmcontext, { size: a.context.length, buffer: buf!.address }, [buf!]);
      return nothing();
    });
  }),

  getvcpucontext: typedOp('domctl.getvcpucontext', function* (ctx, a: { domain: number; vcpu: number }, row) {
    return yield* withBuffers(ctx, [vcpu_guest_context.size], function* ([buf]) {
      yield* domctl(ctx, row, a.domain, xen_domctl_vcpucontext, { vcpu: a.vcpu, ctxt: buf!.address }, [buf!]);
      const bytes = buf!.read();
      const r: VcpuContext = { bytes, context: decode(vcpu_guest_context, new DataView(bytes.buffer, bytes.byteOffset, bytes.length)) };
      return r;
    });
  }),

  shadow_op: {
    off: typedOp('domctl.shadow_op.off', function* (ctx, a: { domain: number }, row) {
      try {
        yield* domctl(ctx, row, a.domain, xen_domctl_shadow_op, { op: SHADOW_OP.OFF });
      } catch (e) {
        if (!mayHaveLeftPending(e)) throw e;
        // Freeing the bitmap is preemptible too: a faulted re-entry leaves the OFF pending, the
        // domain paused, and the runner's re-issue met -EBUSY. Finish it; OFF is then done.
        const req = { domain: a.domain, op: SHADOW_OP.OFF, pages: 0n, mode: 0, bitmap: null };
        const f = yield* withBuffers(ctx, [xen_domctl.size], ([s]) => finishPending(ctx, s!, req));
        if (f.outcome === 'finished') return nothing();
        if (!(e instanceof HypercallError)) throw withFinding(e as XencallError, describeFinish(SHADOW_OP.OFF, f));
        // Nothing pending now; OFF is idempotent.
        yield* domctl(ctx, row, a.domain, xen_domctl_shadow_op, { op: SHADOW_OP.OFF });
      }
      return nothing();
    }),
    enable_logdirty: typedOp('domctl.shadow_op.enable_logdirty', function* (ctx, a: { domain: number }, row) {
      yield* domctl(ctx, row, a.domain, xen_domctl_shadow_op, { op: SHADOW_OP.ENABLE_LOGDIRTY });
      return nothing();
    }),
    clean: typedOp('domctl.shadow_op.clean', function* (ctx, a: LogDirtyReadArgs, row) {
      return yield* logDirtyRead(ctx, row, SHADOW_OP.CLEAN, a);
    }),
    peek: typedOp('domctl.shadow_op.peek', function* (ctx, a: LogDirtyReadArgs, row) {
      return yield* logDirtyRead(ctx, row, SHADOW_OP.PEEK, a);
    }),
    get_allocation: typedOp('domctl.shadow_op.get_allocation', function* (ctx, a: { domain: number }, row) {
      const r = yield* domctl(ctx, row, a.domain, xen_domctl_shadow_op, { op: SHADOW_OP.GET_ALLOCATION });
      return { mb: r.out.mb };
    }),
    set_allocation: typedOp('domctl.shadow_op.set_allocation', function* (ctx, a: { domain: number; mb: number }, row) {
      const r = yield* domctl(ctx, row, a.domain, xen_domctl_shadow_op, { op: SHADOW_OP.SET_ALLOCATION, mb: a.mb });
      return { mb: r.out.mb };
    }),
  },
};

export interface LogDirtyReadArgs {
  domain: number;
  pages: bigint;
  /** XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL: also mark the frames Xen keeps mapped writable (a save's last round). */
  final: boolean;
}

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
  return yield* withBuffers(ctx, [bitmapBytes, xen_domctl.size], function* ([bm, struct]: HypercallBuffer[]) {
    const result = (out: { pages: bigint; stats: { fault_count: number; dirty_count: number } }): ShadowBitmapResult => ({
      bitmap: bm!.read(0, bitmapBytes),
      pages: out.pages,
      fault_count: out.stats.fault_count,
      dirty_count: out.stats.dirty_count,
    });
    for (let reads = 1; ; reads++) {
      try {
        const r = yield* domctl(ctx, row, a.domain, xen_domctl_shadow_op, { op, mode, dirty_bitmap: bm!.address, pages: a.pages }, [bm!]);
        return result(r.out);
      } catch (e) {
        if (!mayHaveLeftPending(e)) throw e;
        // The bitmap is left as the failed call wrote it: a CLEAN finished now continues it.
        const f = yield* finishPending(ctx, struct!, { domain: a.domain, op, pages: a.pages, mode, bitmap: bm! });
        if (f.outcome === 'finished' && op === SHADOW_OP.CLEAN) return result(f.out!);
        if (op === SHADOW_OP.CLEAN || !(e instanceof HypercallError) || reads >= 2) throw withFinding(e as XencallError, describeFinish(op, f));
        bm!.bytes.fill(0);
      }
    }
  });
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
