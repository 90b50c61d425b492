// Typed sysctl calls.

import { xen_domctl_getdomaininfo, xen_sysctl_getdomaininfolist, xen_sysctl_physinfo, xen_sysctl_readconsole } from '../hypercalls/structs.js';
import { decode, type Decoded } from '../layout.js';
import { toDomainInfo, type DomainInfo } from './domctl.js';
import { sysctl, typedOp, withBuffers } from './helpers.js';

export type PhysInfo = Decoded<typeof xen_sysctl_physinfo.fields>;

export interface ConsoleRead {
  /** The bytes read, decoded as latin1 (Xen's console is bytes). */
  text: string;
  bytes: Uint8Array;
  /** Xen's ring index after the read: pass it back with incremental for the next read. */
  index: number;
  count: number;
}

export const SYSCTL_OPS = {
  physinfo: typedOp('sysctl.physinfo', function* (ctx, _a: Record<string, never>, row) {
    const { out } = yield* sysctl(ctx, row, xen_sysctl_physinfo, {});
    return out as PhysInfo;
  }),

  getdomaininfolist: typedOp('sysctl.getdomaininfolist', function* (ctx, a: { first_domain: number; max_domains: number }, row) {
    const rec = xen_domctl_getdomaininfo.size;
    return yield* withBuffers(ctx, [a.max_domains * rec], function* ([list]) {
      const { out } = yield* sysctl(ctx, row, xen_sysctl_getdomaininfolist, { first_domain: a.first_domain, max_domains: a.max_domains, buffer: list!.address }, [list!]);
      const v = list!.view();
      const domains: DomainInfo[] = [];
      for (let i = 0; i < out.num_domains; i++) domains.push(toDomainInfo(decode(xen_domctl_getdomaininfo, v, i * rec)));
      return domains;
    });
  }),

  readconsole: typedOp('sysctl.readconsole', function* (ctx, a: { clear: boolean; incremental: boolean; index: number; size: number }, row) {
    return yield* withBuffers(ctx, [a.size], function* ([buf]) {
      const { out } = yield* sysctl(
        ctx,
        row,
        xen_sysctl_readconsole,
        { clear: a.clear ? 1 : 0, incremental: a.incremental ? 1 : 0, index: a.index, buffer: buf!.address, count: a.size },
        [buf!],
      );
      const bytes = buf!.read(0, out.count);
      const r: ConsoleRead = { text: Buffer.from(bytes).toString('latin1'), bytes, index: out.index, count: out.count };
      return r;
    });
  }),
};
