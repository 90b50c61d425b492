// A fast path for the typed calls' zod schemas, compiled from the schema itself.
//
// zod's safeParse of { domain: 0 } costs ~90 ns on the host, as much as the rest of a raw
// hypercall; under emulation in dom0 that is tens of microseconds per call. So each schema is
// walked once (zod 4's `_zod.def` tree) into plain closures that accept exactly the common inputs:
// plain objects of integers in range, booleans, literals, bigints, arrays, and our own transforms
// called as zod calls them. Anything else returns NOT_PARSED, and the caller runs zod, which
// decides and names the field. A node kind the compiler does not know is delegated to that
// node's own safeParse, so the compiled parser never accepts what zod would refuse and never
// returns something zod would not (test/fast-parse.test.ts checks both on random input for every
// typed call's schema).

import type * as zod from 'zod';

/** The answer of a compiled parser when zod has to decide. */
export const NOT_PARSED: unique symbol = Symbol('not parsed');
export type FastParser = (input: unknown) => unknown;

interface Def {
  readonly type: string;
  readonly checks?: readonly { readonly _zod: { readonly def: CheckDef } }[];
  readonly [k: string]: unknown;
}
interface CheckDef {
  readonly check: string;
  readonly [k: string]: unknown;
}

const defOf = (s: zod.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** Compiles `schema`; the parser returns zod's output for the inputs it takes, NOT_PARSED otherwise. */
export function compileParser(schema: zod.ZodType): FastParser {
  return compile(schema).parse;
}

interface Compiled {
  readonly parse: FastParser;
  /** Optional in an object: an absent key stays absent in the output. */
  readonly optional: boolean;
  /** A primitive default for an absent key (zod returns it without parsing it). */
  readonly hasDefault: boolean;
  readonly defaultValue?: unknown;
}

const plain = (parse: FastParser): Compiled => ({ parse, optional: false, hasDefault: false });

function delegate(schema: zod.ZodType): Compiled {
  return plain((v) => {
    const r = schema.safeParse(v);
    return r.success ? r.data : NOT_PARSED;
  });
}

function compile(schema: zod.ZodType): Compiled {
  const def = defOf(schema);
  switch (def.type) {
    case 'object':
      return compileObject(schema, def);
    case 'number':
      return compileNumber(schema, def);
    case 'bigint':
      return compileBigint(schema, def);
    case 'boolean':
      return def.checks?.length ? delegate(schema) : plain((v) => (typeof v === 'boolean' ? v : NOT_PARSED));
    case 'literal': {
      const values = def.values as readonly unknown[];
      if (!values.every((x) => typeof x === 'number' || typeof x === 'string' || typeof x === 'boolean')) return delegate(schema);
      return plain((v) => (values.some((x) => x === v) ? v : NOT_PARSED));
    }
    case 'enum': {
      const values = Object.values(def.entries as Record<string, unknown>);
      return plain((v) => ((typeof v === 'string' || typeof v === 'number') && values.includes(v) ? v : NOT_PARSED));
    }
    case 'optional': {
      const inner = compile(def.innerType as zod.ZodType).parse;
      return { parse: (v) => (v === undefined ? undefined : inner(v)), optional: true, hasDefault: false };
    }
    case 'default': {
      // zod reads defaultValue through a getter that copies objects; only primitives are safe to keep.
      const value = def.defaultValue;
      if (value !== null && typeof value === 'object') return delegate(schema);
      const inner = compile(def.innerType as zod.ZodType).parse;
      return { parse: (v) => (v === undefined ? value : inner(v)), optional: false, hasDefault: true, defaultValue: value };
    }
    case 'union': {
      // zod answers with the first option that succeeds.
      const options = (def.options as zod.ZodType[]).map((o) => compile(o).parse);
      return plain((v) => {
        for (const o of options) {
          const r = o(v);
          if (r !== NOT_PARSED) return r;
        }
        return NOT_PARSED;
      });
    }
    case 'pipe': {
      const a = compile(def.in as zod.ZodType).parse;
      const b = compile(def.out as zod.ZodType).parse;
      return plain((v) => {
        const r = a(v);
        return r === NOT_PARSED ? NOT_PARSED : b(r);
      });
    }
    case 'transform':
      return compileTransform(def.transform as (v: unknown, ctx: unknown) => unknown);
    case 'custom':
      return compileCustom(schema, def);
    case 'array':
      return compileArray(schema, def);
    default:
      return delegate(schema);
  }
}

function compileObject(schema: zod.ZodType, def: Def): Compiled {
  const catchall = def.catchall as zod.ZodType | undefined;
  // strict() is a catchall of never; passthrough and other catchalls are left to zod.
  const strict = catchall !== undefined && defOf(catchall).type === 'never';
  if (catchall !== undefined && !strict) return delegate(schema);
  if (def.checks?.length) return compileChecked(schema, compileObject(schema, { ...def, checks: [] }), def);
  const shape = def.shape as Record<string, zod.ZodType>;
  const keys = Object.keys(shape);
  const fields = keys.map((k) => compile(shape[k]!));
  return plain(generatedObjectParser(keys, fields, strict) ?? walkingObjectParser(keys, fields, strict));
}

/**
 * The object parser as one generated function: the shape's keys as literal property reads and
 * a switch for the strict check (names quoted with JSON.stringify; they are the schema's own,
 * nothing comes from callers). A property read with a variable key, one per field, costs more
 * than the rest of the parse. Null where code generation is disallowed.
 */
function generatedObjectParser(keys: readonly string[], fields: readonly Compiled[], strict: boolean): FastParser | null {
  const lines: string[] = [
    'if (o === null || typeof o !== "object") return N;',
    // Plain objects only: zod has its own views on arrays, class instances and inherited keys.
    'const p = Object.getPrototypeOf(o); if (p !== Object.prototype && p !== null) return N;',
  ];
  if (strict) {
    lines.push(keys.length ? `for (const k in o) switch (k) { ${keys.map((k) => `case ${JSON.stringify(k)}:`).join(' ')} break; default: return N; }` : 'for (const k in o) return N;');
  }
  lines.push('const out = {}; let v, r;');
  keys.forEach((k, i) => {
    const key = JSON.stringify(k);
    const f = fields[i]!;
    // A key given as undefined and an absent key differ in zod's output: left to zod.
    const absent = f.hasDefault ? `out[${key}] = d[${i}];` : f.optional ? '' : 'return N;';
    lines.push(`v = o[${key}]; if (v === undefined) { if (${key} in o) return N; ${absent} } else { r = f[${i}](v); if (r === N) return N; out[${key}] = r; }`);
  });
  lines.push('return out;');
  try {
    return new Function('N', 'f', 'd', `"use strict"; return function parseObject(o) { ${lines.join(' ')} };`)(
      NOT_PARSED,
      fields.map((f) => f.parse),
      fields.map((f) => f.defaultValue),
    ) as FastParser;
  } catch {
    return null;
  }
}

/** The same parser walking the shape, where code generation is disallowed. */
function walkingObjectParser(keys: readonly string[], fields: readonly Compiled[], strict: boolean): FastParser {
  const known = new Set(keys);
  return (input) => {
    if (input === null || typeof input !== 'object') return NOT_PARSED;
    const proto = Object.getPrototypeOf(input);
    if (proto !== Object.prototype && proto !== null) return NOT_PARSED;
    const o = input as Record<string, unknown>;
    if (strict) for (const k in o) if (!known.has(k)) return NOT_PARSED;
    const out: Record<string, unknown> = {};
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const f = fields[i]!;
      const v = o[k];
      if (v === undefined) {
        if (k in o) return NOT_PARSED;
        if (f.hasDefault) out[k] = f.defaultValue;
        else if (!f.optional) return NOT_PARSED;
        continue;
      }
      const r = f.parse(v);
      if (r === NOT_PARSED) return NOT_PARSED;
      out[k] = r;
    }
    return out;
  };
}

function compileNumber(schema: zod.ZodType, def: Def): Compiled {
  let min = -Infinity;
  let max = Infinity;
  let minInclusive = true;
  let maxInclusive = true;
  let safeint = false;
  for (const c of def.checks ?? []) {
    const d = c._zod.def;
    if (d.check === 'number_format' && d.format === 'safeint') safeint = true;
    else if (d.check === 'greater_than' && typeof d.value === 'number') [min, minInclusive] = [d.value, d.inclusive === true];
    else if (d.check === 'less_than' && typeof d.value === 'number') [max, maxInclusive] = [d.value, d.inclusive === true];
    else return delegate(schema);
  }
  return plain((v) => {
    // zod refuses NaN and ±Infinity for any z.number().
    if (typeof v !== 'number' || !Number.isFinite(v)) return NOT_PARSED;
    if (safeint && !Number.isSafeInteger(v)) return NOT_PARSED;
    if (minInclusive ? v < min : v <= min) return NOT_PARSED;
    if (maxInclusive ? v > max : v >= max) return NOT_PARSED;
    return v;
  });
}

function compileBigint(schema: zod.ZodType, def: Def): Compiled {
  let min: bigint | null = null;
  let max: bigint | null = null;
  let minInclusive = true;
  let maxInclusive = true;
  for (const c of def.checks ?? []) {
    const d = c._zod.def;
    if (d.check === 'greater_than' && typeof d.value === 'bigint') [min, minInclusive] = [d.value, d.inclusive === true];
    else if (d.check === 'less_than' && typeof d.value === 'bigint') [max, maxInclusive] = [d.value, d.inclusive === true];
    else return delegate(schema);
  }
  return plain((v) => {
    if (typeof v !== 'bigint') return NOT_PARSED;
    if (min !== null && (minInclusive ? v < min : v <= min)) return NOT_PARSED;
    if (max !== null && (maxInclusive ? v > max : v >= max)) return NOT_PARSED;
    return v;
  });
}

/**
 * A transform is our own function: it is called as zod calls it, with a context that collects
 * issues. An issue (or an exception) leaves the input to zod, which then reports it.
 */
function compileTransform(fn: (v: unknown, ctx: unknown) => unknown): Compiled {
  if (fn.length < 2) {
    return plain((v) => {
      try {
        const r = fn(v, undefined);
        return r instanceof Promise ? NOT_PARSED : r;
      } catch {
        return NOT_PARSED;
      }
    });
  }
  // One context, emptied before each call: parsing is synchronous and our transforms keep nothing.
  const issues: unknown[] = [];
  const ctx = { value: undefined as unknown, issues, addIssue: (i: unknown) => void issues.push(i) };
  return plain((v) => {
    issues.length = 0;
    ctx.value = v;
    try {
      const r = fn(v, ctx);
      return issues.length > 0 || r instanceof Promise ? NOT_PARSED : r;
    } catch {
      return NOT_PARSED;
    }
  });
}

/** z.custom() and z.instanceof(): the predicate, then any refinements. */
function compileCustom(schema: zod.ZodType, def: Def): Compiled {
  const fn = def.fn as ((v: unknown) => unknown) | undefined;
  if (typeof fn !== 'function') return delegate(schema);
  const base = plain((v) => (safely(fn, v) === true ? v : NOT_PARSED));
  return def.checks?.length ? compileChecked(schema, base, def) : base;
}

/** Refinements (check "custom"): each must answer true; any other check kind is left to zod. */
function compileChecked(schema: zod.ZodType, base: Compiled, def: Def): Compiled {
  const refinements: ((v: unknown) => unknown)[] = [];
  for (const c of def.checks ?? []) {
    const d = c._zod.def;
    if (d.check !== 'custom' || typeof d.fn !== 'function' || d.when !== undefined) return delegate(schema);
    refinements.push(d.fn as (v: unknown) => unknown);
  }
  return plain((v) => {
    const r = base.parse(v);
    if (r === NOT_PARSED) return NOT_PARSED;
    for (const f of refinements) if (safely(f, r) !== true) return NOT_PARSED;
    return r;
  });
}

function compileArray(schema: zod.ZodType, def: Def): Compiled {
  let minLength = 0;
  let maxLength = Infinity;
  for (const c of def.checks ?? []) {
    const d = c._zod.def;
    if (d.check === 'min_length' && typeof d.minimum === 'number') minLength = d.minimum;
    else if (d.check === 'max_length' && typeof d.maximum === 'number') maxLength = d.maximum;
    else return delegate(schema);
  }
  const element = compile(def.element as zod.ZodType).parse;
  return plain((v) => {
    if (!Array.isArray(v) || v.length < minLength || v.length > maxLength) return NOT_PARSED;
    const out = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) {
      // A hole reads as undefined: zod decides what that means.
      if (!(i in v)) return NOT_PARSED;
      const r = element(v[i]);
      if (r === NOT_PARSED) return NOT_PARSED;
      out[i] = r;
    }
    return out;
  });
}

function safely(fn: (v: unknown) => unknown, v: unknown): unknown {
  try {
    return fn(v);
  } catch {
    return NOT_PARSED;
  }
}
