// Table rows for xen_version, memory_op's domain queries and event_channel_op.

import { z } from 'zod';
import { defineRow, type Citation } from '../row.js';
import { EVTCHNOP, XENMEM, XENVER } from '../numbers.js';
import {
  evtchn_alloc_unbound,
  evtchn_close,
  evtchn_send,
  evtchn_status,
  xen_memory_domain,
} from '../structs.js';
import { domidOrSelf, u32 } from '../schemas.js';

const DO_XEN_VERSION: Citation = { file: 'xen/common/kernel.c', function: 'do_xen_version' };
const DO_MEMORY_OP: Citation = { file: 'xen/common/memory.c', function: 'do_memory_op' };
const DO_EVTCHN: Citation = { file: 'xen/common/event_channel.c', function: 'do_event_channel_op' };

const noArgs = z.object({}).strict();

const versionString = (name: keyof typeof XENVER, what: string) =>
  defineRow({
    name: `xen_version.${name}`,
    hypercall: 'xen_version',
    subop: XENVER[name],
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: `Read-only: ${what} is copied out to the caller's buffer; an EFAULT changes nothing.`,
    source: [DO_XEN_VERSION],
    verified: true,
    args: noArgs,
  });

export const XEN_VERSION_ROWS = [
  defineRow({
    name: 'xen_version.version',
    hypercall: 'xen_version',
    subop: XENVER.version,
    verdict: 'safe',
    faults: 'no-pointer',
    longRunning: false,
    reason: 'Returns (major << 16) | minor in the result; no argument points at memory, so it cannot fault.',
    source: [DO_XEN_VERSION],
    verified: true,
    args: noArgs,
  }),
  versionString('extraversion', 'the extraversion string (16 bytes)'),
  versionString('compile_info', 'struct xen_compile_info'),
  versionString('capabilities', 'the capabilities string (1024 bytes)'),
  versionString('changeset', 'the changeset string (64 bytes)'),
  versionString('platform_parameters', 'struct xen_platform_parameters'),
  defineRow({
    name: 'xen_version.get_features',
    hypercall: 'xen_version',
    subop: XENVER.get_features,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: 'Copies struct xen_feature_info in (submap_idx) and back out (submap); read-only.',
    source: [DO_XEN_VERSION],
    verified: true,
    args: z.object({ submap_idx: u32.default(0) }).strict(),
  }),
  defineRow({
    name: 'xen_version.pagesize',
    hypercall: 'xen_version',
    subop: XENVER.pagesize,
    verdict: 'safe',
    faults: 'no-pointer',
    longRunning: false,
    reason: 'Returns the page size in the result and touches no caller memory.',
    source: [DO_XEN_VERSION],
    verified: true,
    args: noArgs,
  }),
];

export const MEMORY_OP_ROWS = [
  defineRow({
    name: 'memory_op.maximum_ram_page',
    hypercall: 'memory_op',
    subop: XENMEM.maximum_ram_page,
    verdict: 'safe',
    faults: 'no-pointer',
    longRunning: false,
    reason: 'Returns max_page in the result (it can exceed 2^31: keep all 64 bits); no caller memory is touched.',
    source: [DO_MEMORY_OP],
    verified: true,
    args: noArgs,
  }),
  defineRow({
    name: 'memory_op.current_reservation',
    hypercall: 'memory_op',
    subop: XENMEM.current_reservation,
    layout: xen_memory_domain,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: 'Copies the domid in and returns the domain\'s page count as the result; read-only.',
    source: [DO_MEMORY_OP],
    verified: true,
    args: z.object({ domid: domidOrSelf }).strict(),
  }),
  defineRow({
    name: 'memory_op.maximum_reservation',
    hypercall: 'memory_op',
    subop: XENMEM.maximum_reservation,
    layout: xen_memory_domain,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: 'Copies the domid in and returns the domain\'s page limit as the result; read-only.',
    source: [DO_MEMORY_OP],
    verified: true,
    args: z.object({ domid: domidOrSelf }).strict(),
  }),
];

export const EVENT_CHANNEL_ROWS = [
  defineRow({
    name: 'event_channel_op.alloc_unbound',
    hypercall: 'event_channel_op',
    subop: EVTCHNOP.alloc_unbound,
    layout: evtchn_alloc_unbound,
    verdict: 'unsafe',
    faults: 'copies',
    longRunning: false,
    reason:
      'evtchn_alloc_unbound() allocates the port, then the struct with the new port number is copied back; an EFAULT there leaks a port the caller never learns, and a re-issue allocates another.',
    source: [DO_EVTCHN, { file: 'xen/common/event_channel.c', function: 'evtchn_alloc_unbound' }],
    recovery:
      'Scan the domain\'s ports with event_channel_op.status for an unbound port whose remote domain is the one you asked for and that you do not already know; use it or close it.',
    verified: true,
    args: z.object({ dom: domidOrSelf, remote_dom: domidOrSelf }).strict(),
  }),
  defineRow({
    name: 'event_channel_op.close',
    hypercall: 'event_channel_op',
    subop: EVTCHNOP.close,
    layout: evtchn_close,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: 'The struct is copied in before the port is closed and nothing is copied back: an EFAULT always comes before the effect.',
    source: [DO_EVTCHN, { file: 'xen/common/event_channel.c', function: 'evtchn_close' }],
    verified: true,
    args: z.object({ port: u32 }).strict(),
  }),
  defineRow({
    name: 'event_channel_op.status',
    hypercall: 'event_channel_op',
    subop: EVTCHNOP.status,
    layout: evtchn_status,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: 'Read-only: copy in, look the port up, copy the status back.',
    source: [DO_EVTCHN, { file: 'xen/common/event_channel.c', function: 'evtchn_status' }],
    verified: true,
    args: z.object({ dom: domidOrSelf, port: u32 }).strict(),
  }),
  defineRow({
    name: 'event_channel_op.send',
    hypercall: 'event_channel_op',
    subop: EVTCHNOP.send,
    layout: evtchn_send,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: 'The port is copied in before the event is raised; nothing is copied back, so an EFAULT comes before the send.',
    source: [DO_EVTCHN, { file: 'xen/common/event_channel.c', function: 'evtchn_send' }],
    verified: true,
    args: z.object({ port: u32 }).strict(),
  }),
];

