// Table rows for __HYPERVISOR_sysctl. do_sysctl (xen/common/sysctl.c) copies struct xen_sysctl
// in, checks the interface version (-EACCES), spins for sysctl_lock (continuing before acting
// when preempted), runs the sub-op and copies the struct back for sub-ops that ask for it.

import { z } from 'zod';
import { defineRow, type Citation } from '../row.js';
import { SYSCTL } from '../numbers.js';
import { xen_sysctl_getdomaininfolist, xen_sysctl_physinfo, xen_sysctl_readconsole } from '../structs.js';
import { domid, u32 } from '../schemas.js';

const DO_SYSCTL: Citation = { file: 'xen/common/sysctl.c', function: 'do_sysctl' };

export const SYSCTL_ROWS = [
  defineRow({
    name: 'sysctl.readconsole',
    hypercall: 'sysctl',
    subop: SYSCTL.readconsole,
    layout: xen_sysctl_readconsole,
    verdict: 'conditional',
    condition: { text: 'unsafe when clear != 0', unsafeWhen: (a) => a.clear !== 0 },
    faults: 'copies',
    longRunning: false,
    reason:
      'read_console_ring copies the ring out in pieces and returns EFAULT before touching the ring; with clear set it then moves the consumer index, and do_sysctl\'s copy-back of count and index can fault after that: a re-issue finds the text gone. Without clear nothing changes.',
    source: [DO_SYSCTL, { file: 'xen/drivers/char/console.c', function: 'read_console_ring' }],
    recovery:
      'Read with clear=0 (incremental, from your own index) and clear separately; after an EFAULT with clear set, the text that arrived is what the buffer holds up to its size: keep it, and re-read incrementally from the old index for anything newer.',
    verified: true,
    args: z
      .object({
        clear: z.boolean().default(false),
        incremental: z.boolean().default(false),
        index: u32.default(0),
        size: z.number().int().min(1).max(16 << 20).default(16384),
      })
      .strict(),
  }),
  defineRow({
    name: 'sysctl.physinfo',
    hypercall: 'sysctl',
    subop: SYSCTL.physinfo,
    layout: xen_sysctl_physinfo,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason: 'Read-only: the struct is filled and copied back; an EFAULT on either copy changes nothing.',
    source: [DO_SYSCTL, { file: 'xen/arch/x86/sysctl.c', function: 'arch_do_physinfo' }],
    verified: true,
    args: z.object({}).strict(),
  }),
  defineRow({
    name: 'sysctl.getdomaininfolist',
    hypercall: 'sysctl',
    subop: SYSCTL.getdomaininfolist,
    layout: xen_sysctl_getdomaininfolist,
    verdict: 'safe',
    faults: 'copies',
    longRunning: false,
    reason:
      'Read-only: one getdomaininfo record is copied out per domain from first_domain on, then num_domains is copied back; an EFAULT anywhere changes no state.',
    source: [DO_SYSCTL],
    verified: true,
    args: z
      .object({ first_domain: domid.default(0), max_domains: z.number().int().min(1).max(4096).default(1024) })
      .strict(),
  }),
];
