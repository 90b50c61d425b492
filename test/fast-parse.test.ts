// The compiled parsers of the typed calls' schemas (src/hypercalls/fast-parse.ts) agree with zod:
// for every typed call, on inputs generated from its schema with junk mixed in at every level,
// what the compiled parser accepts zod accepts with an equal output, and the common valid inputs
// are taken by the compiled parser itself (it is not zod under another name).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type * as zod from 'zod';
import { NOT_PARSED, compileParser } from '../src/hypercalls/fast-parse.js';
import { TYPED_OPS } from '../src/ops/index.js';
import type { TypedOp } from '../src/ops/helpers.js';
import { MockHypervisor } from '../src/testing/index.js';
import { open } from '../src/index.js';

interface Def {
  type: string;
  checks?: { _zod: { def: Record<string, unknown> } }[];
  [k: string]: unknown;
}
const defOf = (s: zod.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

const junk = fc.oneof(
  fc.constantFrom(undefined, null, 0, -0, -1, 1.5, NaN, Infinity, -Infinity, '', '1', true, false, [], {}, 2 ** 32, 2 ** 53, -1n, 2n ** 64n, Symbol('s')),
  fc.anything({ maxDepth: 1, withBigInt: true, withNullPrototype: true, withTypedArray: true }),
);

function checkValue(def: Def, name: string): unknown {
  return def.checks?.map((c) => c._zod.def).find((d) => d.check === name);
}

/** Values around what `schema` accepts: in range, at and past its bounds, and junk. */
function arbitraryFor(schema: zod.ZodType, depth = 0): fc.Arbitrary<unknown> {
  const def = defOf(schema);
  const mixed = (a: fc.Arbitrary<unknown>) => fc.oneof({ arbitrary: a, weight: 12 }, { arbitrary: junk, weight: 1 });
  switch (def.type) {
    case 'object': {
      const shape = def.shape as Record<string, zod.ZodType>;
      const fields = Object.fromEntries(Object.entries(shape).map(([k, s]) => [k, arbitraryFor(s, depth + 1)]));
      // An undefined value is mostly a key left out, sometimes a key given as undefined.
      const base = fc
        .tuple(fc.record(fields, { requiredKeys: [] }), fc.boolean())
        .map(([o, keepUndefined]) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined || keepUndefined)));
      const withExtra = fc.tuple(base, fc.constantFrom('extra', 'domian', '__proto__x')).map(([o, k]) => ({ ...o, [k]: 1 }));
      return fc.oneof({ arbitrary: base, weight: 8 }, { arbitrary: withExtra, weight: 1 }, { arbitrary: junk, weight: 1 });
    }
    case 'number': {
      const gte = checkValue(def, 'greater_than') as { value: number } | undefined;
      const lte = checkValue(def, 'less_than') as { value: number } | undefined;
      const min = Math.max(gte?.value ?? -(2 ** 53), -(2 ** 53));
      const max = Math.min(lte?.value ?? 2 ** 53, 2 ** 53);
      return mixed(
        fc.oneof(
          { arbitrary: fc.integer({ min: Math.max(min, -(2 ** 31)), max: Math.min(max, 2 ** 31 - 1) }), weight: 8 },
          { arbitrary: fc.constantFrom(min, max, min - 1, max + 1, min + 0.5, -0), weight: 2 },
        ),
      );
    }
    case 'bigint': {
      const gte = checkValue(def, 'greater_than') as { value: bigint } | undefined;
      const lte = checkValue(def, 'less_than') as { value: bigint } | undefined;
      const min = gte?.value ?? -(2n ** 70n);
      const max = lte?.value ?? 2n ** 70n;
      return mixed(fc.oneof(fc.bigInt({ min, max }), fc.constantFrom(min, max, min - 1n, max + 1n)));
    }
    case 'boolean':
      return mixed(fc.boolean());
    case 'literal':
      return mixed(fc.constantFrom(...(def.values as unknown[])));
    case 'enum':
      return mixed(fc.constantFrom(...Object.values(def.entries as Record<string, unknown>)));
    case 'optional':
    case 'default':
      return fc.oneof(fc.constant(undefined), arbitraryFor(def.innerType as zod.ZodType, depth));
    case 'union':
      return fc.oneof(...(def.options as zod.ZodType[]).map((o) => arbitraryFor(o, depth)));
    case 'pipe':
      return arbitraryFor(def.in as zod.ZodType, depth);
    case 'array':
      return mixed(fc.array(arbitraryFor(def.element as zod.ZodType, depth + 1), { maxLength: 6 }));
    case 'custom':
      // gfn lists, byte arrays, buffers: typed arrays and arrays of integers of all sorts.
      return fc.oneof(
        fc.bigUint64Array({ min: 0n, max: 2n ** 41n, maxLength: 5 }),
        fc.uint32Array({ maxLength: 5 }),
        fc.float64Array({ maxLength: 5 }),
        fc.uint8Array({ minLength: 15, maxLength: 17 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.array(fc.oneof(fc.integer({ min: -1, max: 2 ** 31 }), fc.bigInt({ min: -1n, max: 2n ** 41n })), { maxLength: 5 }),
        junk,
      );
    case 'string':
      return fc.oneof(fc.uuid(), fc.string({ maxLength: 40 }), junk);
    default:
      return junk;
  }
}

/** Every typed call, with its dotted name. */
function allOps(node: Record<string, unknown>, prefix = ''): [string, TypedOp][] {
  return Object.entries(node).flatMap(([k, v]) => {
    const name = prefix ? `${prefix}.${k}` : k;
    return typeof v === 'object' && v !== null && 'run' in v ? [[name, v as TypedOp] as [string, TypedOp]] : allOps(v as Record<string, unknown>, name);
  });
}

describe('compiled parsers agree with zod', () => {
  for (const [name, op] of allOps(TYPED_OPS)) {
    it(name, () => {
      const schema = op.schema;
      const fast = compileParser(schema);
      let taken = 0;
      fc.assert(
        fc.property(arbitraryFor(schema), (input) => {
          const f = fast(input);
          if (f === NOT_PARSED) return;
          taken++;
          const z = schema.safeParse(input);
          assert.ok(z.success, `${name}: the compiled parser took ${String(input)} that zod refuses`);
          assert.deepStrictEqual(f, z.data, `${name}: outputs differ`);
        }),
        { numRuns: 400, seed: 13 },
      );
      assert.ok(taken > 0, `${name}: the compiled parser took none of 400 inputs: it is zod under another name`);
    });
  }

  // The same suite where code generation is disallowed, which the object parsers fall back from.
  if (!process.env.XENCALL_FAST_PARSE_NO_CODEGEN) {
    it('agrees with zod where code generation is disallowed (the walking object parser)', () => {
      execFileSync(process.execPath, ['--disallow-code-generation-from-strings', '--import', 'tsx', fileURLToPath(import.meta.url)], {
        env: { ...process.env, XENCALL_FAST_PARSE_NO_CODEGEN: '1' },
        stdio: 'pipe',
      });
    });
  }

  it('the typed calls go through the compiled parser, and bad input is still zod\'s ValidationError naming the field', async () => {
    const hv = new MockHypervisor();
    const xc = await open({ backend: hv.backend() });
    assert.equal(xc.sync.domctl.getdomaininfo({ domain: 0 }).domid, 0);
    assert.throws(() => xc.sync.domctl.getdomaininfo({ domain: 0x7ff0 }), (e: unknown) => (e as { field?: string }).field === 'domctl.getdomaininfo.domain');
    assert.throws(() => xc.sync.domctl.getpageframeinfo3({ domain: 0, gfns: [1, 2 ** 40] }), (e: unknown) => (e as { field?: string }).field === 'domctl.getpageframeinfo3.gfns.1');
    xc.close();
  });
});
