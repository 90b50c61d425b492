// zod building blocks for typed-call arguments. Every typed call parses its arguments with these
// before any buffer is touched, so a wrong type or an out-of-range id never reaches a backend.
//
// zod is loaded and the schemas are built on first use, not at import: loading zod costs about
// as much as starting node, and `import('xencall')`, the CLI's --help and the raw API never need
// it. A row's schema is a function of these blocks (ArgsSchema), called once when its typed call
// first runs (row.ts defineRow); the blocks are built together at that moment.

import { createRequire } from 'node:module';
import type * as zod from 'zod';
import type { HypercallBuffer } from '../buffers.js';
import { checkedGfns, type GfnList } from '../gfn-list.js';
import { DOMID } from './numbers.js';

type Z = typeof zod.z;

const MAX_U64 = (1n << 64n) - 1n;

/** The blocks, and zod itself, as a row's schema function receives them. */
export interface Schemas {
  readonly z: Z;
  readonly u8: zod.ZodNumber;
  readonly u16: zod.ZodNumber;
  readonly u32: zod.ZodNumber;
  /** 64-bit unsigned: a bigint, or a safe non-negative integer number. */
  readonly u64: zod.ZodType<bigint, bigint | number>;
  readonly i64: zod.ZodType<bigint, bigint | number>;
  /** An ordinary domain id: below DOMID_FIRST_RESERVED (0x7ff0). */
  readonly domid: zod.ZodNumber;
  /** A domain id that may also be DOMID_SELF (what a domain says of itself). */
  readonly domidOrSelf: zod.ZodType<number, number>;
  /** xen_domain_handle_t: 16 bytes, given as a UUID string or 16 raw bytes. */
  readonly domainHandle: zod.ZodType<Uint8Array, string | Uint8Array>;
  /** Bytes: a Uint8Array (a Buffer is one), of any ArrayBuffer. */
  readonly bytes: zod.ZodType<Uint8Array, Uint8Array>;
  /**
   * The caller's own hypercall buffer (xc.allocBuffer()). Recognised by the brand its class
   * carries (HYPERCALL_BUFFER_BRAND), so the table needs nothing from buffers.ts at run time.
   */
  readonly hypercallBuffer: zod.ZodType<HypercallBuffer, HypercallBuffer>;
  /**
   * A gfn list of 1 to `max` frame numbers, checked and converted in bulk to a BigUint64Array by
   * gfn-list.ts (toGfnArray, the one converter of gfn lists): typed arrays stay typed, and
   * 10^5 gfns never become 10^5 BigInt objects.
   */
  readonly gfnList: (max: number) => zod.ZodType<BigUint64Array, GfnList>;
}

/**
 * The brand on HypercallBuffer.prototype (buffers.ts): a registered symbol, so a schema here can
 * tell a hypercall buffer without importing its class.
 */
export const HYPERCALL_BUFFER_BRAND: unique symbol = Symbol.for('xencall.HypercallBuffer') as never;

/** A typed call's argument schema, built from the blocks when it is first needed. */
export type ArgsSchema = (s: Schemas) => zod.ZodType;

let built: Schemas | undefined;

/** The blocks; the first call loads zod (synchronously, through require) and builds them. */
export function schemas(): Schemas {
  return (built ??= buildSchemas((createRequire(import.meta.url)('zod') as typeof zod).z));
}

/** A schema shared by several rows: built once, the first time one of them needs it. */
export function sharedSchema<T extends zod.ZodType>(make: (s: Schemas) => T): (s: Schemas) => T {
  let made: T | undefined;
  return (s) => (made ??= make(s));
}

/** A typed call without arguments: {} or nothing. */
export const noArgs = sharedSchema(({ z }) => z.object({}).strict());

function buildSchemas(z: Z): Schemas {
  const u64 = z
    .union([z.bigint(), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)])
    .transform((v) => BigInt(v))
    .pipe(z.bigint().min(0n).max(MAX_U64));
  const i64 = z
    .union([z.bigint(), z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER)])
    .transform((v) => BigInt(v))
    .pipe(z.bigint().min(-(1n << 63n)).max((1n << 63n) - 1n));
  const domid = z.number().int().min(0).max(DOMID.FIRST_RESERVED - 1);
  // z.instanceof() types its output by the class's default type argument (Uint8Array<ArrayBuffer>);
  // a Buffer or a view of any ArrayBuffer is as good here.
  const bytes = z.instanceof(Uint8Array) as unknown as zod.ZodType<Uint8Array, Uint8Array>;
  const domainHandle = z
    .union([
      z.uuid({ version: undefined }).or(z.string().regex(/^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$/)),
      bytes.refine((b) => b.length === 16, 'a domain handle is 16 bytes'),
    ])
    .transform((v) => (typeof v === 'string' ? uuidToBytes(v) : new Uint8Array(v)));
  const hypercallBuffer = z.custom<HypercallBuffer>(
    (v) => typeof v === 'object' && v !== null && (v as { [HYPERCALL_BUFFER_BRAND]?: unknown })[HYPERCALL_BUFFER_BRAND] === true,
    'must be a HypercallBuffer from xc.allocBuffer()',
  );
  const gfnLists = new Map<number, zod.ZodType<BigUint64Array, GfnList>>();
  const gfnList = (max: number) => {
    let s = gfnLists.get(max);
    if (!s) {
      const list = z.custom<unknown>((v) => v !== undefined, 'a gfn list is required').transform((v, ctx) => {
        try {
          // A BigUint64Array comes back as it is: the typed calls copy the list into their own
          // buffers (populate_physmap, which reads it again after waits, into a copy of its own).
          return checkedGfns('gfns', v, max);
        } catch (e) {
          // toGfnArray names the entry ("gfns[3]"); the issue carries its index as the path.
          const field = (e as { field?: string }).field ?? 'gfns';
          const index = /\[(\d+)\]/.exec(field)?.[1];
          ctx.issues.push({ code: 'custom', input: v, message: (e as Error).message.replace(/^[^:]*: /, ''), path: index === undefined ? [] : [Number(index)] });
          return z.NEVER;
        }
      });
      // Typed as what it takes: toGfnArray checks any value, and names what is wrong with it.
      s = list as unknown as zod.ZodType<BigUint64Array, GfnList>;
      gfnLists.set(max, s);
    }
    return s;
  };
  return {
    z,
    u8: z.number().int().min(0).max(0xff),
    u16: z.number().int().min(0).max(0xffff),
    u32: z.number().int().min(0).max(0xffffffff),
    u64,
    i64,
    domid,
    domidOrSelf: z.union([domid, z.literal(DOMID.SELF)]),
    domainHandle,
    bytes,
    hypercallBuffer,
    gfnList,
  };
}

export function uuidToBytes(uuid: string): Uint8Array {
  return Uint8Array.from(Buffer.from(uuid.replace(/-/g, ''), 'hex'));
}

/** Two hex digits per byte value, for bytesToUuid. */
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** The 16 bytes at `at` as a UUID string (8-4-4-4-12 lowercase hex digits). */
export function bytesToUuid(b: Uint8Array, at = 0): string {
  return (
    HEX[b[at]!]! + HEX[b[at + 1]!]! + HEX[b[at + 2]!]! + HEX[b[at + 3]!]! + '-' + HEX[b[at + 4]!]! + HEX[b[at + 5]!]! + '-' +
    HEX[b[at + 6]!]! + HEX[b[at + 7]!]! + '-' + HEX[b[at + 8]!]! + HEX[b[at + 9]!]! + '-' +
    HEX[b[at + 10]!]! + HEX[b[at + 11]!]! + HEX[b[at + 12]!]! + HEX[b[at + 13]!]! + HEX[b[at + 14]!]! + HEX[b[at + 15]!]!
  );
}
