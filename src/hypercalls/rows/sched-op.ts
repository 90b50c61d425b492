// Table rows for __HYPERVISOR_sched_op (xen/common/sched/core.c do_sched_op). Every sub-op only
// copies its argument in before acting and copies nothing back (the watchdog id is the return
// value), so an EFAULT always means nothing happened. shutdown, shutdown_code, watchdog and
// pin_override act on the caller's own domain or vcpu, i.e. on dom0: a toolstack has no business
// issuing them.

import { type Citation, subopRows } from '../row.js';
import { SCHEDOP } from '../numbers.js';

const DO_SCHED_OP: Citation = { file: 'xen/common/sched/core.c', function: 'do_sched_op' };

const sched = subopRows('sched_op', SCHEDOP, { verdict: 'safe' });

export const SCHED_OP_ROWS = [
  sched('yield', {
    faults: 'no-pointer',
    reason: 'Yields the calling vcpu; it takes no argument, so it cannot fault.',
    source: [DO_SCHED_OP],
  }),
  sched('block', {
    faults: 'no-pointer',
    reason: 'Blocks the calling vcpu until an event arrives; it takes no argument, so it cannot fault.',
    source: [DO_SCHED_OP],
  }),
  sched('shutdown', {
    reason: 'The reason is copied in before domain_shutdown() of the caller\'s own domain; nothing is copied back.',
    source: [DO_SCHED_OP],
  }),
  sched('poll', {
    reason:
      'The struct is copied in, then the vcpu is marked blocked and the port list read; a fault on that list undoes the blocked and poll state before returning, so nothing lasts.',
    source: [DO_SCHED_OP, { file: 'xen/common/sched/core.c', function: 'do_poll' }],
  }),
  sched('remote_shutdown', {
    reason: 'The struct is copied in before domain_shutdown() of the target; nothing is copied back, and shutting down a domain already shutting down is a no-op anyway.',
    source: [DO_SCHED_OP],
  }),
  sched('shutdown_code', {
    reason: 'The code is copied in before it is recorded (once) for the caller\'s domain; nothing is copied back.',
    source: [DO_SCHED_OP],
  }),
  sched('watchdog', {
    reason: 'The struct is copied in before domain_watchdog() arms or allocates a timer; the new id is the return value, not copied out.',
    source: [DO_SCHED_OP, { file: 'xen/common/sched/core.c', function: 'domain_watchdog' }],
  }),
  sched('pin_override', {
    reason: 'Hardware domain only: the struct is copied in before the calling vcpu\'s temporary affinity is set; nothing is copied back.',
    source: [DO_SCHED_OP],
  }),
];
