// Typed calls of xen_version, memory_op and event_channel_op.

import { cString, decode } from '../layout.js';
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
  xen_platform_parameters,
} from '../hypercalls/structs.js';
import type { Row } from '../hypercalls/row.js';
import { issue, structCall, typedOp, withBuffers, type OpCtx } from './helpers.js';

type NoArgs = Record<string, never>;

/** A xen_version sub-op that fills a fixed-size buffer; returns the buffer's bytes. */
function* versionBuffer(ctx: OpCtx, row: Row, size: number) {
  return yield* withBuffers(ctx, [size], function* ([buf]) {
    yield* issue(ctx, row, [BigInt(row.subop!), buf!.address], [buf!]);
    return buf!.read();
  });
}

export const XEN_VERSION_OPS = {
  version: typedOp('xen_version.version', function* (ctx, _a: NoArgs, row) {
    const v = Number(yield* issue(ctx, row, [BigInt(XENVER.version), 0n], []));
    return { major: v >>> 16, minor: v & 0xffff, raw: v };
  }),
  extraversion: typedOp('xen_version.extraversion', function* (ctx, _a: NoArgs, row) {
    return cString(yield* versionBuffer(ctx, row, XEN_VERSION_STRING_SIZES.xen_extraversion_t));
  }),
  compile_info: typedOp('xen_version.compile_info', function* (ctx, _a: NoArgs, row) {
    const b = yield* versionBuffer(ctx, row, xen_compile_info.size);
    const d = decode(xen_compile_info, new DataView(b.buffer, b.byteOffset, b.length));
    return {
      compiler: cString(d.compiler),
      compile_by: cString(d.compile_by),
      compile_domain: cString(d.compile_domain),
      compile_date: cString(d.compile_date),
    };
  }),
  capabilities: typedOp('xen_version.capabilities', function* (ctx, _a: NoArgs, row) {
    return cString(yield* versionBuffer(ctx, row, XEN_VERSION_STRING_SIZES.xen_capabilities_info_t));
  }),
  changeset: typedOp('xen_version.changeset', function* (ctx, _a: NoArgs, row) {
    return cString(yield* versionBuffer(ctx, row, XEN_VERSION_STRING_SIZES.xen_changeset_info_t));
  }),
  platform_parameters: typedOp('xen_version.platform_parameters', function* (ctx, _a: NoArgs, row) {
    const b = yield* versionBuffer(ctx, row, xen_platform_parameters.size);
    return decode(xen_platform_parameters, new DataView(b.buffer, b.byteOffset, b.length));
  }),
  get_features: typedOp('xen_version.get_features', function* (ctx, a: { submap_idx: number }, row) {
    const { out } = yield* structCall(ctx, row, BigInt(XENVER.get_features), xen_feature_info, { submap_idx: a.submap_idx });
    return out;
  }),
  pagesize: typedOp('xen_version.pagesize', function* (ctx, _a: NoArgs, row) {
    return Number(yield* issue(ctx, row, [BigInt(XENVER.pagesize), 0n], []));
  }),
};

export const MEMORY_OP_OPS = {
  maximum_ram_page: typedOp('memory_op.maximum_ram_page', function* (ctx, _a: NoArgs, row) {
    return yield* issue(ctx, row, [BigInt(XENMEM.maximum_ram_page), 0n], []);
  }),
  current_reservation: typedOp('memory_op.current_reservation', function* (ctx, a: { domid: number }, row) {
    return (yield* structCall(ctx, row, BigInt(XENMEM.current_reservation), xen_memory_domain, { domid: a.domid })).result;
  }),
  maximum_reservation: typedOp('memory_op.maximum_reservation', function* (ctx, a: { domid: number }, row) {
    return (yield* structCall(ctx, row, BigInt(XENMEM.maximum_reservation), xen_memory_domain, { domid: a.domid })).result;
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
  alloc_unbound: typedOp('event_channel_op.alloc_unbound', function* (ctx, a: { dom: number; remote_dom: number }, row) {
    const { out } = yield* structCall(ctx, row, BigInt(EVTCHNOP.alloc_unbound), evtchn_alloc_unbound, { dom: a.dom, remote_dom: a.remote_dom });
    return { port: out.port };
  }),
  close: typedOp('event_channel_op.close', function* (ctx, a: { port: number }, row) {
    yield* structCall(ctx, row, BigInt(EVTCHNOP.close), evtchn_close, { port: a.port });
  }),
  send: typedOp('event_channel_op.send', function* (ctx, a: { port: number }, row) {
    yield* structCall(ctx, row, BigInt(EVTCHNOP.send), evtchn_send, { port: a.port });
  }),
  status: typedOp('event_channel_op.status', function* (ctx, a: { dom: number; port: number }, row) {
    const { out } = yield* structCall(ctx, row, BigInt(EVTCHNOP.status), evtchn_status, { dom: a.dom, port: a.port });
    const status = STATUS_NAMES[out.status] ?? 'closed';
    const r: EvtchnStatus = { port: a.port, status, vcpu: out.vcpu };
    if (status === 'unbound' || status === 'interdomain') r.remote_dom = out.remote_dom;
    if (status === 'interdomain') r.remote_port = out.remote_port;
    return r;
  }),
};
