// Table rows for __HYPERVISOR_event_channel_op. do_event_channel_op (xen/common/event_channel.c)
// copies each sub-op's struct in, acts, and for the allocating sub-ops copies the struct with
// the new port back out: `if ( !rc && __copy_to_guest(arg, &op, 1) ) rc = -EFAULT; /* Cleaning
// up here would be a mess! */`. Those leave a port behind when the copy-back faults.

import { defineRow, type Citation, subopRows } from '../row.js';
import { EVTCHNOP } from '../numbers.js';
import { evtchn_alloc_unbound, evtchn_close, evtchn_send, evtchn_status } from '../structs.js';
import { sharedSchema } from '../schemas.js';

const byPort = sharedSchema(({ z, u32 }) => z.object({ port: u32 }).strict());

const DO_EVTCHN: Citation = { file: 'xen/common/event_channel.c', function: 'do_event_channel_op' };
const evtchnFn = (fn: string): Citation => ({ file: 'xen/common/event_channel.c', function: fn });
const fifoFn = (fn: string): Citation => ({ file: 'xen/common/event_fifo.c', function: fn });

const evtchn = subopRows('event_channel_op', EVTCHNOP);

/** How to find a port the caller never learned: scan its own ports with status. */
const scanOwnPorts = (match: string) =>
  `Scan your own ports with event_channel_op.status (dom = DOMID_SELF, port 1, 2, ... until -EINVAL) for ${match} that you do not already know; adopt it, or close it and re-issue.`;

export const EVENT_CHANNEL_ROWS = [
  evtchn('bind_interdomain', {
    verdict: 'unsafe',
    reason:
      'evtchn_bind_interdomain() allocates the local port and binds both ends before the struct with local_port is copied back; after an EFAULT the local port is bound but unknown, and a re-issue fails with -EINVAL because the remote port is no longer unbound.',
    source: [DO_EVTCHN, evtchnFn('evtchn_bind_interdomain')],
    recovery: `${scanOwnPorts('an interdomain port whose u.interdomain.dom/port are the remote domain and port you asked for')} Closing it makes the remote port unbound again.`,
  }),
  evtchn('bind_virq', {
    verdict: 'unsafe',
    reason: 'The port is allocated and the virq bound before the struct with the port is copied back; a re-issue returns -EEXIST (the virq is already bound).',
    source: [DO_EVTCHN, evtchnFn('evtchn_bind_virq')],
    recovery: scanOwnPorts('a virq port with u.virq and vcpu as requested (vcpu 0 for global virqs)'),
  }),
  evtchn('bind_pirq', {
    verdict: 'unsafe',
    reason: 'The binding is complete before the struct with the port is copied back; a re-issue returns -EEXIST (the pirq already has a port).',
    source: [DO_EVTCHN, evtchnFn('evtchn_bind_pirq')],
    recovery: scanOwnPorts('a pirq port with u.pirq as requested'),
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
    source: [DO_EVTCHN, evtchnFn('evtchn_close')],
    verified: true,
    args: byPort,
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
    source: [DO_EVTCHN, evtchnFn('evtchn_send')],
    verified: true,
    args: byPort,
  }),
  defineRow({
    name: 'event_channel_op.status',
    hypercall: 'event_channel_op',
    subop: EVTCHNOP.status,
    layout: evtchn_status,
    verdict: 'safe',
    readOnly: true,
    faults: 'copies',
    longRunning: false,
    reason: 'Read-only: copy in, look the port up, copy the status back.',
    source: [DO_EVTCHN, evtchnFn('evtchn_status')],
    verified: true,
    args: ({ z, domidOrSelf, u32 }) => z.object({ dom: domidOrSelf, port: u32 }).strict(),
  }),
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
    source: [DO_EVTCHN, evtchnFn('evtchn_alloc_unbound')],
    recovery:
      'Scan the domain\'s ports with event_channel_op.status for an unbound port whose remote domain is the one you asked for and that you do not already know (allocation is lowest-free-first); adopt it. A port in a foreign domain cannot be closed with close, only by reset or domain destruction.',
    verified: true,
    args: ({ z, domidOrSelf }) => z.object({ dom: domidOrSelf, remote_dom: domidOrSelf }).strict(),
  }),
  evtchn('bind_ipi', {
    verdict: 'unsafe',
    reason: 'The port is allocated before the struct with it is copied back, and nothing stops a second allocation: a re-issue leaks the first port.',
    source: [DO_EVTCHN, evtchnFn('evtchn_bind_ipi')],
    recovery: scanOwnPorts('an ipi port notifying the requested vcpu'),
  }),
  evtchn('bind_vcpu', {
    verdict: 'safe',
    reason: 'The struct is copied in before the notify vcpu is set and nothing is copied back; the setter is idempotent anyway.',
    source: [DO_EVTCHN, evtchnFn('evtchn_bind_vcpu')],
  }),
  evtchn('unmask', {
    verdict: 'safe',
    reason: 'The struct is copied in before the port is unmasked and nothing is copied back; unmasking is idempotent anyway.',
    source: [DO_EVTCHN, evtchnFn('evtchn_unmask')],
  }),
  evtchn('reset', {
    verdict: 'unsafe',
    longRunning: true,
    reason:
      'evtchn_reset() closes ports and continues every 64 ports as cmd reset_cont, which copies the struct in again; an EFAULT on that re-entry abandons a half-done reset with d->next_evtchn set, and a re-issued reset then returns -EBUSY. An EFAULT on the first entry means nothing happened.',
    source: [DO_EVTCHN, evtchnFn('evtchn_reset')],
    recovery:
      'Re-issue reset (10); if it returns -EBUSY, issue reset_cont (14), which resumes from d->next_evtchn (closing closed ports again is harmless). A foreign domain must be paused by the controller.',
  }),
  evtchn('init_control', {
    verdict: 'unsafe',
    reason:
      'evtchn_fifo_init_control() maps the vcpu\'s control block (switching the domain to the FIFO ABI on the first call) before link_bits is copied back; a re-issue for the same vcpu returns -EINVAL. It acts on the caller\'s own domain.',
    source: [DO_EVTCHN, fifoFn('evtchn_fifo_init_control')],
    recovery: 'Treat the op as done: its only output, link_bits, is the constant EVTCHN_FIFO_LINK_BITS (17); read -EINVAL on a retry as "already initialised".',
  }),
  evtchn('expand_array', {
    verdict: 'safe',
    reason: 'The struct is copied in before the array page is mapped and nothing is copied back, so an EFAULT means nothing was added.',
    source: [DO_EVTCHN, fifoFn('evtchn_fifo_expand_array')],
  }),
  evtchn('set_priority', {
    verdict: 'safe',
    reason: 'The struct is copied in before the priority is set and nothing is copied back; the setter is idempotent anyway.',
    source: [DO_EVTCHN, evtchnFn('evtchn_set_priority')],
  }),
  evtchn('reset_cont', {
    verdict: 'unsafe',
    longRunning: true,
    reason:
      'Xen-internal: the continuation command of reset (public/event_channel.h names it only for Xen itself). It resumes a preempted reset from d->next_evtchn (-EBUSY when none is in progress), with the same EFAULT exposure as reset.',
    source: [DO_EVTCHN, evtchnFn('evtchn_reset')],
    recovery: 'A toolstack issues it only as the documented recovery of event_channel_op.reset, after a re-issued reset returned -EBUSY, repeating it until it returns 0.',
  }),
];
