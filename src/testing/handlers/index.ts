// The mock hypervisor's hypercall handlers. Each follows the order of Xen 4.17's own code
// (RELEASE-4.17.7): copy the argument struct in, check, act, copy results out. That order is
// the whole point: an injected copy fault must land before or after the side effect exactly
// where Xen's would. Comments name the Xen function each handler mirrors.
//
// One file per hypercall family, as the table's rows/ and the typed calls' ops/ are; this one
// dispatches a hypercall to its family and records the call and its result.

import { HYPERCALL } from '../../hypercalls/numbers.js';
import type { MockHypervisor } from '../hypervisor.js';
import { pagingDomctlCont } from '../paging.js';
import { RESTARTED, nameOf, type Begin } from './common.js';
import type { InjectedReply } from '../faults.js';
import { xenVersion } from './xen-version.js';
import { domctl } from './domctl.js';
import { sysctl } from './sysctl.js';
import { memoryOp } from './memory-op.js';
import { eventChannelOp } from './event-channel.js';
import { hvmOp } from './hvm-op.js';

/**
 * Handles one hypercall entry. `continuation` marks a re-execution Xen asked for
 * (hypercall_create_continuation): the caller made one call; the history shows each entry.
 */
export function dispatch(hv: MockHypervisor, op: number, args: readonly bigint[], continuation: boolean): bigint {
  const family = nameOf(HYPERCALL, op) ?? `hypercall_${op}`;
  let name: string = family;
  let result: bigint;
  const begin = (n: string) => {
    name = n;
    hv.history.record(continuation ? { kind: 'call', op, args, name: n, continuation } : { kind: 'call', op, args, name: n });
    // A reply() rule answers for the op before its handler does anything: every handler names
    // its call before its first copy or effect.
    if (!continuation) {
      const reply = hv.faults.checkCall(n);
      if (reply) throw new Replied(reply);
    }
  };
  try {
    result = handle(hv, op, args, begin, family);
  } catch (e) {
    if (!(e instanceof Replied)) throw e;
    hv.history.record({ kind: 'reply', name, errno: e.reply.errno, rule: e.reply.rule });
    result = -BigInt(e.reply.errno);
  }
  hv.history.record({ kind: 'return', name, result });
  return result;
}

/** Unwinds a handler whose call a reply() rule answers. */
class Replied {
  constructor(readonly reply: InjectedReply) {}
}

function handle(hv: MockHypervisor, op: number, args: readonly bigint[], begin: Begin, family: string): bigint {
  let result: bigint;
  switch (op) {
    case HYPERCALL.xen_version:
      result = xenVersion(hv, args, begin);
      break;
    case HYPERCALL.domctl:
      result = domctl(hv, args, begin);
      break;
    case HYPERCALL.sysctl:
      result = sysctl(hv, args, begin);
      break;
    case HYPERCALL.memory_op:
      result = memoryOp(hv, args, begin);
      break;
    case HYPERCALL.event_channel_op:
      result = eventChannelOp(hv, args, begin);
      break;
    case HYPERCALL.hvm_op:
      result = hvmOp(hv, args, begin);
      break;
    case HYPERCALL.arch_1: {
      // __HYPERVISOR_paging_domctl_cont: what a preempted shadow_op continues as.
      begin('arch_1');
      const r = pagingDomctlCont(hv, 'arch_1', args[0]!);
      result = r === 'restart' ? RESTARTED : r;
      break;
    }
    default:
      begin(family);
      result = hv.unmodelled(family, `hypercall ${op} (${family})`);
  }
  return result;
}
