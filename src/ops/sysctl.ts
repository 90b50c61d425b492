// Typed sysctl calls.

import type { HypercallBuffer } from '../buffers.js';
import { DOMID } from '../hypercalls/numbers.js';
import {
  xen_domctl_getdomaininfo,
  xen_sysctl_cpuinfo,
  xen_sysctl_cputopo,
  xen_sysctl_cputopoinfo,
  xen_sysctl_getcpuinfo,
  xen_sysctl_getdomaininfolist,
  xen_sysctl_meminfo,
  xen_sysctl_numainfo,
  xen_sysctl_physinfo,
  xen_sysctl_readconsole,
  xen_sysctl_sched_id,
} from '../hypercalls/structs.js';
import { XEN_INVALID, XEN_SCHEDULER } from '../hypercalls/values.js';
import { decode, type Decoded } from '../layout.js';
import { driveSync, type Program } from '../retry/runner.js';
import type { Row } from '../hypercalls/row.js';
import { domainInfoAt, type DomainInfo } from './domctl.js';
import { cpuIdCount, sysctl, sysctlCalls, sysctlOp, typedOp, withBuffers, type OpCtx } from './helpers.js';

export type PhysInfo = Decoded<typeof xen_sysctl_physinfo.fields>;

export interface ConsoleRead {
  /** The bytes read, decoded as latin1 (Xen's console is bytes). */
  text: string;
  bytes: Uint8Array;
  /** Xen's ring index after the read: pass it back with incremental for the next read. */
  index: number;
  count: number;
}

export interface SchedId {
  /** XEN_SCHEDULER_* of the default cpupool's scheduler. */
  sched_id: number;
  /** Its name in lowercase ("credit2"), or null for an id the 4.17 headers do not define. */
  name: string | null;
}

export interface CpuTopology {
  cpu: number;
  /** False for a cpu id below the highest that is not present; then core, socket and node are null. */
  present: boolean;
  core: number | null;
  socket: number | null;
  node: number | null;
}

export interface NumaNode {
  node: number;
  /** False for a node id below the highest that is offline; then memsize and memfree are null. */
  online: boolean;
  /** Bytes spanned by the node. */
  memsize: bigint | null;
  /** Bytes free in the node's heap. */
  memfree: bigint | null;
}

export interface NumaInfo {
  nodes: NumaNode[];
  /** distances[i][j]: the distance from node i to node j (10 = local), null where Xen has none. */
  distances: (number | null)[][];
}

export interface CpuIdle {
  cpu: number;
  /** Nanoseconds the cpu has spent idle. */
  idletime: bigint;
}

/** Domains fetched per getdomaininfolist call when the typed call pages through all of them. */
export const GETDOMAININFOLIST_PAGE = 256;

const SCHEDULER_NAMES = Object.fromEntries(Object.entries(XEN_SCHEDULER).map(([k, v]) => [v, k.toLowerCase()])) as Record<number, string>;

const orNull = (v: number, invalid: number) => (v === invalid ? null : v);

export const SYSCTL_OPS = {
  physinfo: sysctlOp('sysctl.physinfo', { layout: xen_sysctl_physinfo, answer: ({ out }, _a): PhysInfo => out }),

  sched_id: sysctlOp('sysctl.sched_id', {
    layout: xen_sysctl_sched_id,
    answer: ({ out }, _a): SchedId => ({ sched_id: out.sched_id, name: SCHEDULER_NAMES[out.sched_id] ?? null }),
  }),

  getdomaininfolist: typedOp(
    'sysctl.getdomaininfolist',
    function* (ctx, a, row) {
      if (a.max_domains !== undefined) return yield* domainPage.run(ctx, { first: a.first_domain, max: a.max_domains }, row);
      return yield* allDomains(ctx, a.first_domain, row);
    },
    // One page (max_domains given) without a generator; paging through all of them is the program, driven here.
    (ctx, a, row) =>
      a.max_domains !== undefined
        ? domainPage.runSync(ctx, { first: a.first_domain, max: a.max_domains }, row)
        : driveSync(allDomains(ctx, a.first_domain, row), { backend: ctx.env.backend, sleep: ctx.sleepSync }),
  ),

  readconsole: typedOp(
    'sysctl.readconsole',
    function* (ctx, a, row) {
      const read = function* (buf: HypercallBuffer) {
        // Zeroed, so that what a failed read copied ends at the first NUL (the recovery hint).
        buf.bytes.fill(0);
        const { out } = yield* sysctl(
          ctx,
          row,
          xen_sysctl_readconsole,
          { clear: a.clear ? 1 : 0, incremental: a.incremental ? 1 : 0, index: a.index, buffer: buf.address, count: buf.size },
          [buf],
        );
        const bytes = buf.read(0, out.count);
        const r: ConsoleRead = { text: Buffer.from(bytes).toString('latin1'), bytes, index: out.index, count: out.count };
        return r;
      };
      // The caller's buffer is theirs to keep (and to read after a refused clear); ours is freed.
      if (a.buffer) return yield* read(a.buffer);
      return yield* withBuffers(ctx, [a.size ?? 16384], ([buf]) => read(buf!));
    },
  ),

  getcpuinfo: typedOp('sysctl.getcpuinfo', function* (ctx, a, row) {
    // getcpuinfo has no size query (a NULL handle with max_cpus 0 just answers 0): size the
    // array from physinfo, as libxc's callers do.
    const max = a.max_cpus ?? (yield* cpuIdCount(ctx));
    return yield* withBuffers(ctx, [max * xen_sysctl_cpuinfo.size], function* ([info]) {
      const { out } = yield* sysctl(ctx, row, xen_sysctl_getcpuinfo, { max_cpus: max, info: info!.address }, [info!]);
      const v = info!.view();
      const cpus: CpuIdle[] = [];
      for (let i = 0; i < out.nr_cpus; i++) cpus.push({ cpu: i, idletime: decode(xen_sysctl_cpuinfo, v, i * xen_sysctl_cpuinfo.size).idletime });
      return cpus;
    });
  }),

  cputopoinfo: typedOp('sysctl.cputopoinfo', function* (ctx, _a, row) {
    // The handshake Xen documents: a NULL handle asks for num_cpus, then a second call fills an
    // array that large. (If cpus appear in between, 4.17 fills only the entries asked for.)
    const probe = yield* sysctl(ctx, row, xen_sysctl_cputopoinfo, { num_cpus: 0, cputopo: 0n });
    const n = probe.out.num_cpus;
    if (n === 0) return [] as CpuTopology[];
    return yield* withBuffers(ctx, [n * xen_sysctl_cputopo.size], function* ([arr]) {
      const { out } = yield* sysctl(ctx, row, xen_sysctl_cputopoinfo, { num_cpus: n, cputopo: arr!.address }, [arr!]);
      const v = arr!.view();
      const cpus: CpuTopology[] = [];
      for (let i = 0; i < out.num_cpus; i++) {
        const t = decode(xen_sysctl_cputopo, v, i * xen_sysctl_cputopo.size);
        const present = t.core !== XEN_INVALID.CORE_ID;
        cpus.push({
          cpu: i,
          present,
          core: orNull(t.core, XEN_INVALID.CORE_ID),
          socket: orNull(t.socket, XEN_INVALID.SOCKET_ID),
          node: orNull(t.node, XEN_INVALID.NODE_ID),
        });
      }
      return cpus;
    });
  }),

  numainfo: typedOp('sysctl.numainfo', function* (ctx, _a, row) {
    // Both handles NULL asks for num_nodes; then meminfo[n] and distance[n * n] are filled.
    const probe = yield* sysctl(ctx, row, xen_sysctl_numainfo, { num_nodes: 0, meminfo: 0n, distance: 0n });
    const n = probe.out.num_nodes;
    if (n === 0) return { nodes: [], distances: [] } as NumaInfo;
    return yield* withBuffers(ctx, [n * xen_sysctl_meminfo.size, n * n * 4], function* ([mem, dist]) {
      const { out } = yield* sysctl(ctx, row, xen_sysctl_numainfo, { num_nodes: n, meminfo: mem!.address, distance: dist!.address }, [mem!, dist!]);
      // Rows of the distance matrix are n wide (the n asked for), whatever num_nodes came back.
      const got = out.num_nodes;
      const mv = mem!.view();
      const dv = dist!.view();
      const r: NumaInfo = { nodes: [], distances: [] };
      for (let i = 0; i < got; i++) {
        const m = decode(xen_sysctl_meminfo, mv, i * xen_sysctl_meminfo.size);
        const online = m.memsize !== BigInt(XEN_INVALID.MEM_SZ);
        r.nodes.push({ node: i, online, memsize: online ? m.memsize : null, memfree: online ? m.memfree : null });
        const rowDist: (number | null)[] = [];
        for (let j = 0; j < got; j++) rowDist.push(orNull(dv.getUint32((i * n + j) * 4, true), XEN_INVALID.NODE_DIST));
        r.distances.push(rowDist);
      }
      return r;
    });
  }),
};

/** One getdomaininfolist call: up to `max` domains from `first` on, read straight from the list. */
const domainPage = sysctlCalls({
  layout: xen_sysctl_getdomaininfolist,
  buffers: (p: { first: number; max: number }) => [p.max * xen_domctl_getdomaininfo.size],
  payload: (p, [list]) => ({ first_domain: p.first, max_domains: p.max, buffer: list!.address }),
  answer: ({ out }, _p, _row, [list]) => {
    const mem = list!.views();
    const domains: DomainInfo[] = [];
    for (let i = 0; i < out.num_domains; i++) domains.push(domainInfoAt(mem, i * xen_domctl_getdomaininfo.size));
    return domains;
  },
});

/**
 * Pages through every domain: each call answers for ids from first_domain up, in id order, so
 * the next page starts past the last id returned. A short page is the last one.
 */
function* allDomains(ctx: OpCtx, from: number, row: Row): Program<DomainInfo[]> {
  const all: DomainInfo[] = [];
  let first = from;
  for (;;) {
    const page = yield* domainPage.run(ctx, { first, max: GETDOMAININFOLIST_PAGE }, row);
    all.push(...page);
    if (page.length < GETDOMAININFOLIST_PAGE) return all;
    first = page[page.length - 1]!.domid + 1;
    if (first >= DOMID.FIRST_RESERVED) return all;
  }
}
