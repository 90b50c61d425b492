// Checks for the plain-JavaScript arguments of the public entry points (option bags, signals,
// counts), so a wrong type is a ValidationError naming its field instead of a TypeError from
// deep inside, or a value silently taken as something else. Typed-call arguments have their
// zod schemas (hypercalls/schemas.ts); these cover everything around them.

import type { Backend } from './backend.js';
import { ValidationError, describeValue } from './errors.js';

/** `v` as an option bag: undefined becomes {}, anything but a plain object is refused. */
export function optionBag<T extends object>(field: string, v: T | undefined | null): Partial<T> {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ValidationError(field, `must be an object or undefined, got ${describeValue(v)}`);
  return v;
}

/** An object the caller must give (a spec, a required option bag). */
export function requiredBag<T extends object>(field: string, v: T | undefined | null): T {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ValidationError(field, `must be an object, got ${describeValue(v)}`);
  return v;
}

/** An integer in [min, max] (a number; bigints are not counts). */
export function integerIn(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ValidationError(field, `must be an integer from ${min} to ${max}, got ${describeValue(v)}`);
  }
  return v;
}

/** The same, where undefined means "not given". */
export function optionalIntegerIn(field: string, v: unknown, min: number, max: number): number | undefined {
  return v === undefined ? undefined : integerIn(field, v, min, max);
}

/** A real AbortSignal or undefined: a look-alike ({ aborted: true }) would be read wrongly later. */
export function signalOf(field: string, v: unknown): AbortSignal | undefined {
  if (v === undefined) return undefined;
  if (!(v instanceof AbortSignal)) throw new ValidationError(field, `must be an AbortSignal, got ${describeValue(v)}`);
  return v;
}

/** The signal of a call's options ({ signal }), the options themselves checked first. */
export function callSignal(options: unknown): AbortSignal | undefined {
  if (options === undefined) return undefined;
  const o = optionBag('options', options as object);
  return signalOf('options.signal', (o as { signal?: unknown }).signal);
}

const BACKEND_METHODS = ['hypercall', 'allocPages', 'freePages', 'buffersNeverFault', 'touchPages', 'close'] as const;

/** Whether `v` has the members every Backend has (the interface cannot be checked by instanceof). */
export function checkBackend(field: string, v: unknown): Backend {
  const missing = v !== null && typeof v === 'object' ? BACKEND_METHODS.filter((m) => typeof (v as Record<string, unknown>)[m] !== 'function') : BACKEND_METHODS;
  if (missing.length) throw new ValidationError(field, `must be a Backend (privcmd or a MockHypervisor's backend()); ${describeValue(v)} lacks ${missing.join(', ')}`);
  return v as Backend;
}

/** A function or undefined. */
export function optionalFunction<F>(field: string, v: unknown): F | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'function') throw new ValidationError(field, `must be a function, got ${describeValue(v)}`);
  return v as F;
}

/** `v` as bytes: a Uint8Array, of at least `minLength` bytes when given. */
export function bytesArg(field: string, v: unknown, minLength = 0): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new ValidationError(field, `must be a Uint8Array, got ${describeValue(v)}`);
  if (v.length < minLength) throw new ValidationError(field, `must be at least ${minLength} bytes, got ${v.length}`);
  return v;
}

/** `v` as a finite list of values: an array or another iterable (a Set, a typed array). */
export function iterableArg(field: string, v: unknown, maxLength = Number.MAX_SAFE_INTEGER): unknown[] {
  if (typeof v === 'string' || v === null || typeof v !== 'object' || typeof (v as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function') {
    throw new ValidationError(field, `must be an array or another iterable, got ${describeValue(v)}`);
  }
  const out: unknown[] = [];
  for (const x of v as Iterable<unknown>) {
    if (out.length >= maxLength) throw new ValidationError(field, `holds more than ${maxLength} entries`);
    out.push(x);
  }
  return out;
}
