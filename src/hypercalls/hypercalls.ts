// How each hypercall carries its sub-op and its argument struct, so a raw call can be classified
// (matched to its table row) by reading the caller's own buffers, as Xen would.

import { HYPERCALL, MEMOP_CMD_MASK, XEN_DOMCTL_INTERFACE_VERSION, XEN_SYSCTL_INTERFACE_VERSION } from './numbers.js';
import { DOMCTL_PAYLOAD_OFFSET, SYSCTL_PAYLOAD_OFFSET } from './structs.js';

export type HypercallName = keyof typeof HYPERCALL;

/** Where the sub-op number is. */
export type SubopLocator =
  /** In an argument register, masked (memory_op keeps continuation progress above the mask). */
  | { readonly from: 'arg'; readonly arg: number; readonly mask?: number }
  /** In the struct an argument points at: a u32 at `offset`. */
  | { readonly from: 'struct'; readonly arg: number; readonly offset: number }
  /** dm_op: arg2 points at an array of xen_dm_op_buf; the first buffer starts with the op. */
  | { readonly from: 'dm_op' };

export interface HypercallSpec {
  readonly name: HypercallName;
  readonly number: number;
  readonly subop: SubopLocator | null;
  /** Where the sub-op's argument struct begins: which argument points at it, and the offset. */
  readonly payload: { readonly arg: number; readonly offset: number } | null;
  /** domctl and sysctl carry an interface version Xen checks (-EACCES on mismatch). */
  readonly interfaceVersion?: number;
  /**
   * True where no sub-op's argument struct holds a guest pointer, so the pointers Xen follows
   * are the argument registers alone (xen_version: strings and small structs of numbers,
   * xen/include/public/version.h).
   */
  readonly pointerFreePayload?: boolean;
}

const cmdInArg0 = { from: 'arg', arg: 0 } as const;
const payloadAtArg1 = { arg: 1, offset: 0 } as const;

const special: Partial<Record<HypercallName, Omit<HypercallSpec, 'name' | 'number'>>> = {
  domctl: {
    subop: { from: 'struct', arg: 0, offset: 0 },
    payload: { arg: 0, offset: DOMCTL_PAYLOAD_OFFSET },
    interfaceVersion: XEN_DOMCTL_INTERFACE_VERSION,
  },
  sysctl: {
    subop: { from: 'struct', arg: 0, offset: 0 },
    payload: { arg: 0, offset: SYSCTL_PAYLOAD_OFFSET },
    interfaceVersion: XEN_SYSCTL_INTERFACE_VERSION,
  },
  platform_op: { subop: { from: 'struct', arg: 0, offset: 0 }, payload: { arg: 0, offset: 8 } },
  memory_op: { subop: { from: 'arg', arg: 0, mask: MEMOP_CMD_MASK }, payload: payloadAtArg1 },
  xen_version: { subop: cmdInArg0, payload: payloadAtArg1, pointerFreePayload: true },
  event_channel_op: { subop: cmdInArg0, payload: payloadAtArg1 },
  grant_table_op: { subop: cmdInArg0, payload: payloadAtArg1 },
  sched_op: { subop: cmdInArg0, payload: payloadAtArg1 },
  hvm_op: { subop: cmdInArg0, payload: payloadAtArg1 },
  physdev_op: { subop: cmdInArg0, payload: payloadAtArg1 },
  vcpu_op: { subop: cmdInArg0, payload: { arg: 2, offset: 0 } },
  console_io: { subop: cmdInArg0, payload: { arg: 2, offset: 0 } },
  dm_op: { subop: { from: 'dm_op' }, payload: null },
  xsm_op: { subop: null, payload: { arg: 0, offset: 0 } },
  kexec_op: { subop: cmdInArg0, payload: payloadAtArg1 },
  hypfs_op: { subop: cmdInArg0, payload: null },
  argo_op: { subop: cmdInArg0, payload: null },
  xenpmu_op: { subop: cmdInArg0, payload: payloadAtArg1 },
  callback_op: { subop: cmdInArg0, payload: payloadAtArg1 },
  nmi_op: { subop: cmdInArg0, payload: payloadAtArg1 },
  mmuext_op: { subop: null, payload: { arg: 0, offset: 0 } },
};

export const HYPERCALLS: Readonly<Record<HypercallName, HypercallSpec>> = Object.freeze(
  Object.fromEntries(
    (Object.entries(HYPERCALL) as [HypercallName, number][]).map(([name, number]) => [
      name,
      Object.freeze({ name, number, subop: null, payload: null, ...special[name] }),
    ]),
  ) as Record<HypercallName, HypercallSpec>,
);

const byNumber = new Map<number, HypercallSpec>(Object.values(HYPERCALLS).map((h) => [h.number, h]));

export function hypercallByNumber(op: number): HypercallSpec | undefined {
  return byNumber.get(op);
}
