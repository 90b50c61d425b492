// The mock's hvm_op: xen/arch/x86/hvm/hvm.c do_hvm_op.

import { decode, encode } from '../../layout.js';
import { DOMID, HVMOP } from '../../hypercalls/numbers.js';
import { xen_hvm_param } from '../../hypercalls/structs.js';
import { HVM_NR_PARAMS, HVM_PARAM } from '../../hypercalls/values.js';
import type { MockHypervisor } from '../hypervisor.js';
import { E, OK, nameOf, dv, type Begin } from './common.js';

/** Deprecated parameters: hvm_allow_get_param and hvm_allow_set_param refuse them (-EINVAL). */
const HVM_PARAM_DEPRECATED = new Set<number>([
  HVM_PARAM.PAE_ENABLED,
  HVM_PARAM.DM_DOMAIN,
  HVM_PARAM.MEMORY_EVENT_CR0,
  HVM_PARAM.MEMORY_EVENT_CR3,
  HVM_PARAM.MEMORY_EVENT_CR4,
  HVM_PARAM.MEMORY_EVENT_INT3,
  HVM_PARAM.NESTEDHVM,
  HVM_PARAM.MEMORY_EVENT_SINGLE_STEP,
  HVM_PARAM.BUFIOREQ_EVTCHN,
  HVM_PARAM.MEMORY_EVENT_MSR,
]);

/** Parameters hvm_allow_set_param lets change only once (a different non-zero value: -EEXIST). */
const HVM_PARAM_SET_ONCE = new Set<number>([
  HVM_PARAM.VIRIDIAN,
  HVM_PARAM.IOREQ_PFN,
  HVM_PARAM.BUFIOREQ_PFN,
  HVM_PARAM.IOREQ_SERVER_PFN,
  HVM_PARAM.NR_IOREQ_SERVER_PAGES,
  HVM_PARAM.ALTP2M,
  HVM_PARAM.MCA_CAP,
]);

export function hvmOp(hv: MockHypervisor, args: readonly bigint[], begin: Begin): bigint {
  const cmd = Number(BigInt.asUintN(32, args[0]!));
  const arg = args[1]!;
  const name = `hvm_op.${nameOf(HVMOP, cmd) ?? cmd}`;
  begin(name);
  if (cmd !== HVMOP.get_param && cmd !== HVMOP.set_param) return hv.unmodelled(name, `hvm_op cmd ${cmd}`);

  // hvmop_get_param / hvmop_set_param
  const b = hv.copyFromGuest(name, arg, xen_hvm_param.size, 'arg1 (struct xen_hvm_param)');
  if (!b) return E('EFAULT');
  const a = decode(xen_hvm_param, dv(b));
  if (a.index >= HVM_NR_PARAMS) return E('EINVAL');
  // rcu_lock_domain_by_any_id: DOMID_SELF is the caller, the PV dom0.
  const d = hv.domain(a.domid === DOMID.SELF ? 0 : a.domid);
  if (!d) return E('ESRCH');
  // rc = -EINVAL; if ( is_hvm_domain(d) ... ): a PV target gets -EINVAL whatever the index.
  if (!d.hvm) return E('EINVAL');
  if (HVM_PARAM_DEPRECATED.has(a.index)) return E('EINVAL');

  if (cmd === HVMOP.get_param) {
    encode(xen_hvm_param, dv(b), 0, { value: d.hvmParams[a.index]! });
    return hv.copyToGuest(name, arg, b, 'arg1 (struct xen_hvm_param)') ? OK : E('EFAULT');
  }

  // hvm_allow_set_param, then hvm_set_param's per-parameter checks (the ones modelled here).
  const old = d.hvmParams[a.index]!;
  if (HVM_PARAM_SET_ONCE.has(a.index) && old !== 0n && a.value !== old) return E('EEXIST');
  const invalid =
    (a.index === HVM_PARAM.TIMER_MODE && a.value > 3n) || // > HVMPTM_one_missed_tick_pending
    (a.index === HVM_PARAM.ACPI_S_STATE && a.value !== 0n && a.value !== 3n) ||
    (a.index === HVM_PARAM.TRIPLE_FAULT_REASON && a.value > 5n) || // > SHUTDOWN_MAX
    (a.index === HVM_PARAM.X87_FIP_WIDTH && a.value !== 0n && a.value !== 4n && a.value !== 8n) ||
    (a.index === HVM_PARAM.NR_IOREQ_SERVER_PAGES && (a.value === 0n || a.value > 64n));
  if (invalid) return E('EINVAL');
  d.hvmParams[a.index] = a.value;
  hv.effect(name, 'hvm.param', { domid: d.domid, index: a.index, value: a.value });
  return OK; // nothing is copied back
}
