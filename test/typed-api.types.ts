import { open } from '../src/index.js';
const xc = await open();
await xc.domctl.getdomaininfo({ domain: 0 });
await xc.domctl.max_mem({ domain: 1, max_memkb: 5 });
// @ts-expect-error wrong field type
await xc.domctl.getdomaininfo({ domain: 'x' });
// @ts-expect-error unknown field
await xc.domctl.getdomaininfo({ domian: 0 });
const info = await xc.domctl.getdomaininfo({ domain: 0 });
const n: number = info.domid;
void n;
