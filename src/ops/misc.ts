// Typed calls of xen_version, memory_op and event_channel_op.

import { cString, decode, encoderOf } from '../layout.js';
import { ShortCountError, XencallError, ErrorCodes } from '../errors.js';
import { delayBeforeAttempt } from '../retry/decide.js';
import { EVTCHNOP, EVTCHNSTAT, XENMEM, XENVER } from '../hypercalls/numbers.js';
import {
  XEN_VERSION_STRING_SIZES,
  evtchn_alloc_unbound,
  evtchn_close,
  evtchn_send,
  evtchn_status,
  xen_compile_info,
  xen_feature_info,
  xen_memory_domain,
  xen_memory_reservation,
  xen_platform_parameters,
} from '../hypercalls/structs.js';
import type { Row } from '../hypercalls/row.js';
import type { Program } from '../retry/runner.js';
import { issue, registerOp, structCall, typedOp, withBuffers, type ArgsOut, type OpCtx } from './helpers.js';


const VERSION_REGS = [BigInt(XENVER.version), 0n] as const;
const PAGESIZE_REGS = [BigInt(XENVER.pagesize), 0n] as const;
const MAXIMUM_RAM_PAGE_REGS = [BigInt(XENMEM.maximum_ram_page), 0n] as const;
const POPULATE_PHYSMAP = BigInt(XENMEM.populate_physmap);

/** A xen_version sub-op that fills a fixed-size buffer; returns the buffer's bytes. */
function* versionBuffer(ctx: OpCtx, row: Row, size: number) {
  return yield* withBuffers(ctx, [size], function* ([buf]) {
    yield* issue(ctx, row, [BigInt(row.subop!), buf!.address], [buf!]);
    return buf!.read();
  });
}

export const XEN_VERSION_OPS = {
  version: registerOp(
    'xen_version.version',
    (_a) => VERSION_REGS,
    (r) => {
      const v = Number(r);
      return { major: v >>> 16, minor: v & 0xffff, raw: v };
    },
  ),
  extraversion: typedOp('xen_version.extraversion', function* (ctx, _a, row) {
    return cString(yield* versionBuffer(ctx, row, XEN_VERSION_STRING_SIZES.xen_extraversion_t));
  }),
  compile_info: typedOp('xen_version.compile_info', function* (ctx, _a, row) {
    const b = yield* versionBuffer(ctx, row, xen_compile_info.size);
    const d = decode(xen_compile_info, new DataView(b.buffer, b.byteOffset, b.length));
    return {
      compiler: cString(d.compiler),
      compile_by: cString(d.compile_by),
      compile_domain: cString(d.compile_domain),
      compile_date: cString(d.compile_date),
    };
  }),
  capabilities: typedOp('xen_version.capabilities', function* (ctx, _a, row) {
    return cString(yield* versionBuffer(ctx, row, XEN_VERSION_STRING_SIZES.xen_capabilities_info_t));
  }),
  changeset: typedOp('xen_version.changeset', function* (ctx, _a, row) {
    return cString(yield* versionBuffer(ctx, row, XEN_VERSION_STRING_SIZES.xen_changeset_info_t));
  }),
  platform_parameters: typedOp('xen_version.platform_parameters', function* (ctx, _a, row) {
    const b = yield* versionBuffer(ctx, row, xen_platform_parameters.size);
    return decode(xen_platform_parameters, new DataView(b.buffer, b.byteOffset, b.length));
  }),
  get_features: typedOp('xen_version.get_features', function* (ctx, a, row) {
    const { out } = yield* structCall(ctx, row, BigInt(XENVER.get_features), xen_feature_info, { submap_idx: a.submap_idx });
    return out;
  }),
  pagesize: registerOp('xen_version.pagesize', (_a) => PAGESIZE_REGS, Number),
};


/**
 * populate_physmap and its short count (xen/common/memory.c do_memory_op lines 1404-1475 and
 * populate_physmap lines 157-311 at RELEASE-4.17.7). Xen never answers -EFAULT here: any failure,
 * a faulting copy included, ends the call and the result is the number of extents done (the
 * struct copy failing gives the start extent, 0). So the rest is re-issued from pristine inputs
 * (the list re-written from the caller's gfns, extent_start advanced, nr_extents reduced) until
 * everything is done. A call that does nothing is re-issued only while buffers can fault, up to
 * the retry policy's attempts, with its backoff; then the ShortCountError says how far it got.
 */
function* populatePhysmap(ctx: OpCtx, a: ArgsOut<'memory_op.populate_physmap'>, row: Row): Program<number> {
  const n = a.gfns.length;
  // The list is read again for every resume, after waits: from a copy the caller cannot change.
  const gfnBytes = new Uint8Array(a.gfns.slice().buffer, 0, n * 8);
  // The buffers are taken here rather than through withBuffers(): a generator less on every step.
  const res = ctx.pool.take(xen_memory_reservation.size);
  const list = ctx.pool.take(n * 8);
  try {
    const stallBudget = ctx.env.canFault ? ctx.env.policy.maxAttempts : 1;
    const inputs = [res, list];
    let done = 0;
    let stalls = 0;
    let issued = 0;
    while (done < n) {
      const rest = n - done;
      // Xen writes MFNs back into the list for a PV target: the rest starts from the caller's gfns.
      list.live().bytes.set(done === 0 ? gfnBytes : gfnBytes.subarray(done * 8), done * 8);
      encoderOf(xen_memory_reservation)(res.view(), 0, {
        extent_start: list.address + BigInt(done * 8),
        nr_extents: BigInt(rest),
        extent_order: a.extent_order,
        mem_flags: a.mem_flags,
        domid: a.domid,
      });
      issued++;
      const r = yield* issue(ctx, row, [POPULATE_PHYSMAP, res.address], inputs);
      if (r > BigInt(rest)) throw new XencallError(ErrorCodes.HYPERCALL, `${row.name} answered ${r} extents done of ${rest} asked: not a count Xen gives`);
      if (r > 0n) {
        done += Number(r);
        stalls = 0;
        continue;
      }
      if (++stalls >= stallBudget) {
        throw new ShortCountError(
          row.name,
          done,
          n,
          issued,
          'Xen stopped at an extent it could not populate: the domain is at max_mem, the host is out of memory, extent_order is above what Xen allows, mem_flags asks for something it cannot give, or the domain does not exist',
        );
      }
      const ms = delayBeforeAttempt(stalls + 1, ctx.env.policy);
      if (ms > 0) yield { type: 'sleep', ms };
    }
    return n;
  } finally {
    ctx.pool.giveBack(res);
    ctx.pool.giveBack(list);
  }
}

export const MEMORY_OP_OPS = {
  populate_physmap: typedOp('memory_op.populate_physmap', populatePhysmap),
  maximum_ram_page: registerOp('memory_op.maximum_ram_page', (_a) => MAXIMUM_RAM_PAGE_REGS, (r) => r),
  current_reservation: typedOp('memory_op.current_reservation', function* (ctx, a, row) {
    return (yield* structCall(ctx, row, BigInt(XENMEM.current_reservation), xen_memory_domain, { domid: a.domid })).result;
  }),
  maximum_reservation: typedOp('memory_op.maximum_reservation', function* (ctx, a, row) {
    return (yield* structCall(ctx, row, BigInt(XENMEM.maximum_reservation), xen_memory_domain, { domid: a.domid })).result;
  }),
  /** The highest gfn the domain has (an HVM guest's p2m size is this + 1, as libxenguest's xc_domain_nr_gpfns says). */
  maximum_gpfn: typedOp('memory_op.maximum_gpfn', function* (ctx, a, row) {
    return (yield* structCall(ctx, row, BigInt(XENMEM.maximum_gpfn), xen_memory_domain, { domid: a.domid })).result;
  }),
};

const STATUS_NAMES = Object.fromEntries(Object.entries(EVTCHNSTAT).map(([k, v]) => [v, k])) as Record<number, keyof typeof EVTCHNSTAT>;

export interface EvtchnStatus {
  port: number;
  status: keyof typeof EVTCHNSTAT;
  vcpu: number;
  /** For unbound and interdomain ports: the remote domain. */
  remote_dom?: number;
  /** For interdomain ports: the remote port. */
  remote_port?: number;
}

export const EVENT_CHANNEL_OPS = {
  alloc_unbound: typedOp('event_channel_op.alloc_unbound', function* (ctx, a, row) {
    const { out } = yield* structCall(ctx, row, BigInt(EVTCHNOP.alloc_unbound), evtchn_alloc_unbound, { dom: a.dom, remote_dom: a.remote_dom });
    return { port: out.port };
  }),
  close: typedOp('event_channel_op.close', function* (ctx, a, row) {
    yield* structCall(ctx, row, BigInt(EVTCHNOP.close), evtchn_close, { port: a.port });
  }),
  send: typedOp('event_channel_op.send', function* (ctx, a, row) {
    yield* structCall(ctx, row, BigInt(EVTCHNOP.send), evtchn_send, { port: a.port });
  }),
  status: typedOp('event_channel_op.status', function* (ctx, a, row) {
    const { out } = yield* structCall(ctx, row, BigInt(EVTCHNOP.status), evtchn_status, { dom: a.dom, port: a.port });
    const status = STATUS_NAMES[out.status] ?? 'closed';
    const r: EvtchnStatus = { port: a.port, status, vcpu: out.vcpu };
    if (status === 'unbound' || status === 'interdomain') r.remote_dom = out.remote_dom;
    if (status === 'interdomain') r.remote_port = out.remote_port;
    return r;
  }),
};
