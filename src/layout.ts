// Declarative C struct layouts (x86_64) and their codec.
//
// A layout is data: a C type name, its sizeof, and fields at offsets, each spelled exactly as in
// Xen's headers. test/abi-probe.test.ts turns every layout into a C probe that prints sizeof and
// offsetof for each field, compiles it against Debian's libxen-dev headers and compares. So
// nothing here is trusted by eye: a wrong offset fails a test that names it.

export type ScalarKind = 'u8' | 'u16' | 'u32' | 'i32' | 'u64' | 'i64' | 'handle';

export type FieldType =
  | { readonly kind: ScalarKind }
  | { readonly kind: 'bytes'; readonly length: number }
  | { readonly kind: 'array'; readonly of: 'u32' | 'u64'; readonly length: number }
  | { readonly kind: 'struct'; readonly layout: StructLayout };

export interface FieldSpec {
  readonly offset: number;
  readonly type: FieldType;
  /** The member designator in C when it is not the field's name (a union member, say). */
  readonly cname?: string;
}

export type FieldMap = Readonly<Record<string, FieldSpec>>;

export interface StructLayout<F extends FieldMap = FieldMap> {
  /** The C type as the probe spells it, e.g. "struct xen_domctl_getdomaininfo". */
  readonly ctype: string;
  readonly size: number;
  readonly fields: F;
}

type ValueOf<T extends FieldType> = T extends { kind: 'u8' | 'u16' | 'u32' | 'i32' }
  ? number
  : T extends { kind: 'u64' | 'i64' | 'handle' }
    ? bigint
    : T extends { kind: 'bytes' }
      ? Uint8Array
      : T extends { kind: 'array'; of: 'u32' }
        ? number[]
        : T extends { kind: 'array'; of: 'u64' }
          ? bigint[]
          : T extends { kind: 'struct'; layout: StructLayout<infer G> }
            ? Decoded<G>
            : never;

export type Decoded<F extends FieldMap> = { -readonly [K in keyof F]: ValueOf<F[K]['type']> };

const scalar = (kind: ScalarKind) => (offset: number) => ({ offset, type: { kind } }) as const;
export const u8 = scalar('u8') as (o: number) => { offset: number; type: { kind: 'u8' } };
export const u16 = scalar('u16') as (o: number) => { offset: number; type: { kind: 'u16' } };
export const u32 = scalar('u32') as (o: number) => { offset: number; type: { kind: 'u32' } };
export const i32 = scalar('i32') as (o: number) => { offset: number; type: { kind: 'i32' } };
export const u64 = scalar('u64') as (o: number) => { offset: number; type: { kind: 'u64' } };
export const i64 = scalar('i64') as (o: number) => { offset: number; type: { kind: 'i64' } };
/** A XEN_GUEST_HANDLE: a guest virtual address, 8 bytes on x86_64. */
export const handle = scalar('handle') as (o: number) => { offset: number; type: { kind: 'handle' } };
export const bytes = (offset: number, length: number) => ({ offset, type: { kind: 'bytes', length } }) as const;
export const array = <T extends 'u32' | 'u64'>(offset: number, of: T, length: number) =>
  ({ offset, type: { kind: 'array', of, length } }) as const;
export const struct = <G extends FieldMap>(offset: number, layout: StructLayout<G>) =>
  ({ offset, type: { kind: 'struct', layout } }) as const;

/** Gives a field whose C designator differs from its name, e.g. a union member "u.interdomain.port". */
export const cnamed = <T extends FieldSpec>(f: T, cname: string) => ({ ...f, cname }) as T;

export function defineStruct<const F extends FieldMap>(ctype: string, size: number, fields: F): StructLayout<F> {
  for (const [name, f] of Object.entries(fields)) {
    const end = f.offset + widthOf(f.type);
    if (end > size) throw new Error(`layout ${ctype}.${name} ends at ${end}, past sizeof ${size}`);
  }
  return Object.freeze({ ctype, size, fields });
}

export function widthOf(t: FieldType): number {
  switch (t.kind) {
    case 'u8':
      return 1;
    case 'u16':
      return 2;
    case 'u32':
    case 'i32':
      return 4;
    case 'u64':
    case 'i64':
    case 'handle':
      return 8;
    case 'bytes':
      return t.length;
    case 'array':
      return (t.of === 'u32' ? 4 : 8) * t.length;
    case 'struct':
      return t.layout.size;
  }
}

/** Reads a struct at `base` (little-endian, as on x86). */
export function decode<F extends FieldMap>(layout: StructLayout<F>, view: DataView, base = 0): Decoded<F> {
  return decoderOf(layout)(view, base) as Decoded<F>;
}

/**
 * Writes the given fields of a struct at `base`; fields not given are left as they are (callers
 * zero the struct first when they build one from scratch).
 */
export function encode<F extends FieldMap>(
  layout: StructLayout<F>,
  view: DataView,
  base: number,
  values: Partial<Decoded<F>>,
): void {
  encoderOf(layout)(view, base, values as Record<string, unknown>);
}

type Decoder = (view: DataView, base: number) => Record<string, unknown>;
type Encoder = (view: DataView, base: number, values: Record<string, unknown>) => void;

/** One decoder and one encoder per layout, made on first use: layouts are frozen data. */
const decoders = new WeakMap<StructLayout, Decoder>();
const encoders = new WeakMap<StructLayout, Encoder>();

/** The layout's decoder, for callers that decode on every call and keep it. */
export function decoderOf(layout: StructLayout): Decoder {
  // Calls come in runs of the same layout: the last one answers without a map lookup.
  if (layout === lastDecoded) return lastDecoder!;
  let d = decoders.get(layout);
  if (!d) decoders.set(layout, (d = compileDecoder(layout)));
  lastDecoded = layout;
  lastDecoder = d;
  return d;
}
let lastDecoded: StructLayout | undefined;
let lastDecoder: Decoder | undefined;

/** The layout's encoder, for callers that encode on every call and keep it. */
export function encoderOf(layout: StructLayout): Encoder {
  if (layout === lastEncoded) return lastEncoder!;
  let e = encoders.get(layout);
  if (!e) encoders.set(layout, (e = compileEncoder(layout)));
  lastEncoded = layout;
  lastEncoder = e;
  return e;
}
let lastEncoded: StructLayout | undefined;
let lastEncoder: Encoder | undefined;

/**
 * Builds a layout's decoder. The typed calls decode a struct on every call, and walking the
 * field map (a property added at a time, a switch per field) cost several times the hypercall's
 * own JavaScript; so the decoder is generated as one object literal with the scalar reads
 * inline, nested structs as nested literals (the names are the layout's own, quoted with
 * JSON.stringify; nothing comes from callers). Where code generation is disallowed
 * (--disallow-code-generation-from-strings) it falls back to the field walk; both give the same
 * object, with the fields in layout order.
 */
function compileDecoder(layout: StructLayout): Decoder {
  const subs: ((v: DataView, at: number) => unknown)[] = [];
  const literal = (l: StructLayout, at: string): string => {
    const parts: string[] = [];
    for (const name of Object.keys(l.fields)) {
      const f = l.fields[name]!;
      const t = f.type;
      const here = `${at} + ${f.offset}`;
      let expr: string;
      if (t.kind === 'struct') expr = literal(t.layout, `(${here})`);
      else {
        expr = scalarRead(t.kind, here) ?? '';
        if (!expr) {
          subs.push((v, a) => readField(t, v, a));
          expr = `s[${subs.length - 1}](v, ${here})`;
        }
      }
      parts.push(`${JSON.stringify(name)}: ${expr}`);
    }
    return `{ ${parts.join(', ')} }`;
  };
  try {
    return new Function('s', `"use strict"; return function decode(v, b) { return ${literal(layout, 'b')}; };`)(subs) as Decoder;
  } catch {
    return (view, base) => {
      const out: Record<string, unknown> = {};
      for (const name in layout.fields) {
        const f = layout.fields[name]!;
        out[name] = readField(f.type, view, base + f.offset);
      }
      return out;
    };
  }
}

/** The inline read of a scalar at `at` (an expression), or null for the other kinds. */
function scalarRead(kind: FieldType['kind'], at: string): string | null {
  switch (kind) {
    case 'u8':
      return `v.getUint8(${at})`;
    case 'u16':
      return `v.getUint16(${at}, true)`;
    case 'u32':
      return `v.getUint32(${at}, true)`;
    case 'i32':
      return `v.getInt32(${at}, true)`;
    case 'u64':
    case 'handle':
      return `v.getBigUint64(${at}, true)`;
    case 'i64':
      return `v.getBigInt64(${at}, true)`;
    default:
      return null;
  }
}

/**
 * Builds a layout's encoder: the given fields in the caller's order (for...in), each a case of a
 * switch with its write inline, an unknown name an error, undefined skipped, as the field walk
 * does it. Generated like the decoder, with the same fallback.
 */
function compileEncoder(layout: StructLayout): Encoder {
  const walk: Encoder = (view, base, values) => {
    for (const name in values) {
      const f = layout.fields[name];
      if (!f) throw new Error(`${layout.ctype} has no field ${name}`);
      writeField(f.type, view, base + f.offset, values[name], `${layout.ctype}.${name}`);
    }
  };
  const subs: ((v: DataView, at: number, x: unknown) => void)[] = [];
  const cases: string[] = [];
  for (const name of Object.keys(layout.fields)) {
    const f = layout.fields[name]!;
    const t = f.type;
    const at = `b + ${f.offset}`;
    let stmt: string;
    switch (t.kind) {
      case 'u8':
        stmt = `v.setUint8(${at}, x)`;
        break;
      case 'u16':
        stmt = `v.setUint16(${at}, x, true)`;
        break;
      case 'u32':
        stmt = `v.setUint32(${at}, x, true)`;
        break;
      case 'i32':
        stmt = `v.setInt32(${at}, x, true)`;
        break;
      case 'u64':
      case 'handle':
        stmt = `v.setBigUint64(${at}, BigInt(x), true)`;
        break;
      case 'i64':
        stmt = `v.setBigInt64(${at}, BigInt(x), true)`;
        break;
      default: {
        const path = `${layout.ctype}.${name}`;
        subs.push((v, a, x) => writeField(t, v, a, x, path));
        stmt = `s[${subs.length - 1}](v, ${at}, x)`;
      }
    }
    cases.push(`case ${JSON.stringify(name)}: ${stmt}; break;`);
  }
  try {
    return new Function(
      's',
      'unknown',
      `"use strict"; return function encode(v, b, o) { for (const k in o) { const x = o[k]; if (x === undefined) continue; switch (k) { ${cases.join(' ')} default: unknown(k); } } };`,
    )(subs, (name: string) => {
      throw new Error(`${layout.ctype} has no field ${name}`);
    }) as Encoder;
  } catch {
    return walk;
  }
}

function readField(t: FieldType, v: DataView, at: number): unknown {
  switch (t.kind) {
    case 'u8':
      return v.getUint8(at);
    case 'u16':
      return v.getUint16(at, true);
    case 'u32':
      return v.getUint32(at, true);
    case 'i32':
      return v.getInt32(at, true);
    case 'u64':
    case 'handle':
      return v.getBigUint64(at, true);
    case 'i64':
      return v.getBigInt64(at, true);
    case 'bytes': {
      // A fresh array filled by copy: small ones live on V8's heap, where ArrayBuffer.slice()
      // would allocate a backing store each time.
      const out = new Uint8Array(t.length);
      out.set(new Uint8Array(v.buffer, v.byteOffset + at, t.length));
      return out;
    }
    case 'array': {
      const out: (number | bigint)[] = [];
      for (let i = 0; i < t.length; i++) {
        out.push(t.of === 'u32' ? v.getUint32(at + i * 4, true) : v.getBigUint64(at + i * 8, true));
      }
      return out;
    }
    case 'struct':
      return decode(t.layout, v, at);
  }
}

function writeField(t: FieldType, v: DataView, at: number, value: unknown, path: string): void {
  if (value === undefined) return;
  switch (t.kind) {
    case 'u8':
      v.setUint8(at, value as number);
      return;
    case 'u16':
      v.setUint16(at, value as number, true);
      return;
    case 'u32':
      v.setUint32(at, value as number, true);
      return;
    case 'i32':
      v.setInt32(at, value as number, true);
      return;
    case 'u64':
    case 'handle':
      v.setBigUint64(at, BigInt(value as bigint), true);
      return;
    case 'i64':
      v.setBigInt64(at, BigInt(value as bigint), true);
      return;
    case 'bytes': {
      const src = value as Uint8Array;
      if (src.length > t.length) throw new Error(`${path}: ${src.length} bytes do not fit in ${t.length}`);
      new Uint8Array(v.buffer, v.byteOffset + at, t.length).fill(0).set(src);
      return;
    }
    case 'array': {
      const src = value as readonly (number | bigint)[];
      for (let i = 0; i < t.length; i++) {
        const x = src[i] ?? 0;
        if (t.of === 'u32') v.setUint32(at + i * 4, Number(x), true);
        else v.setBigUint64(at + i * 8, BigInt(x), true);
      }
      return;
    }
    case 'struct':
      encode(t.layout, v, at, value as Partial<Decoded<FieldMap>>);
      return;
  }
}

/** Every guest-handle field of a layout, nested structs included, as absolute offsets. */
export function handleOffsets(layout: StructLayout, base = 0): number[] {
  const out: number[] = [];
  for (const f of Object.values(layout.fields)) {
    if (f.type.kind === 'handle') out.push(base + f.offset);
    else if (f.type.kind === 'struct') out.push(...handleOffsets(f.type.layout, base + f.offset));
  }
  return out;
}

/** Decodes a NUL-terminated C string from a fixed char array. */
export function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return Buffer.from(b.subarray(0, end === -1 ? b.length : end)).toString('latin1');
}
