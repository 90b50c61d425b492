// Typed hvm_op calls: HVM parameters of a domain (hvm/params.h). Xen answers -EINVAL for a PV
// target, before looking at the parameter (hvmop_get_param/hvmop_set_param check
// is_hvm_domain first).

import { HVMOP } from '../hypercalls/numbers.js';
import { xen_hvm_param } from '../hypercalls/structs.js';
import { structCall, typedOp } from './helpers.js';

export interface HvmParam {
  /** The HVM_PARAM_* index. */
  index: number;
  value: bigint;
}

export const HVM_OP_OPS = {
  get_param: typedOp('hvm_op.get_param', function* (ctx, a, row) {
    const { out } = yield* structCall(ctx, row, BigInt(HVMOP.get_param), xen_hvm_param, { domid: a.domid, index: a.index });
    const r: HvmParam = { index: a.index, value: out.value };
    return r;
  }),
  set_param: typedOp('hvm_op.set_param', function* (ctx, a, row) {
    yield* structCall(ctx, row, BigInt(HVMOP.set_param), xen_hvm_param, { domid: a.domid, index: a.index, value: a.value });
  }),
};
