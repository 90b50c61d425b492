// Compile-time checks of the typed API (npm run typecheck compiles this file; it never runs).
// The argument types come from the table rows' zod schemas (z.input), so each @ts-expect-error
// below fails the typecheck if a schema and the types drift apart.
import { open } from '../src/index.js';
import type { RowName, TypedRowName } from '../src/hypercalls/table.js';

const xc = await open();
await xc.domctl.getdomaininfo({ domain: 0 });
await xc.domctl.max_mem({ domain: 1, max_memkb: 5 });
await xc.domctl.max_mem({ domain: 1, max_memkb: 5n });
// @ts-expect-error wrong field type
await xc.domctl.getdomaininfo({ domain: 'x' });
// @ts-expect-error unknown field
await xc.domctl.getdomaininfo({ domian: 0 });
// @ts-expect-error a required field (the schema has no default for domain)
await xc.domctl.getdomaininfo({});
// @ts-expect-error a call with a required field cannot be made without arguments
await xc.domctl.getdomaininfo();
const info = await xc.domctl.getdomaininfo({ domain: 0 });
const n: number = info.domid;
void n;

// Fields with a default may be left out; a UUID string or 16 bytes is a handle.
await xc.domctl.createdomain({ handle: '7e57c0de-0000-4000-8000-000000000001' });
await xc.domctl.createdomain({ handle: new Uint8Array(16), max_vcpus: 2 });
// @ts-expect-error createdomain's handle has no default
await xc.domctl.createdomain({ max_vcpus: 2 });
// A call whose fields all have defaults, or that has none, takes no arguments.
await xc.sysctl.getdomaininfolist();
await xc.sysctl.physinfo();
// @ts-expect-error physinfo takes no fields
await xc.sysctl.physinfo({ nr_cpus: 1 });
// Gfn lists take any GfnList, typed arrays included.
await xc.domctl.getpageframeinfo3({ domain: 1, gfns: new Uint32Array([1, 2]) });
await xc.memory_op.populate_physmap({ domid: 1, gfns: [1, 2n] });
// @ts-expect-error a gfn list is not a string
await xc.memory_op.populate_physmap({ domid: 1, gfns: 'x' });
// The synchronous twins take the same arguments.
xc.sync.domctl.getvcpuinfo({ domain: 1, vcpu: 0 });
// @ts-expect-error getvcpuinfo needs vcpu
xc.sync.domctl.getvcpuinfo({ domain: 1 });
// readconsole's own buffer is a HypercallBuffer.
await xc.sysctl.readconsole({ buffer: xc.allocBuffer(64) });
// @ts-expect-error a plain array is not a hypercall buffer
await xc.sysctl.readconsole({ buffer: new Uint8Array(64) });

// Row names are the table's own, as a union of literals, not string.
const name: RowName = 'domctl.shadow_op.clean';
const typed: TypedRowName = 'domctl.getdomaininfo';
// @ts-expect-error no such row
const wrong: RowName = 'domctl.getdomaininf';
// @ts-expect-error a row without a typed call
const untyped: TypedRowName = 'mmu_update';
const notWide: string extends RowName ? 'wide' : 'literal' = 'literal';
void [name, typed, wrong, untyped, notWide];
