// zod building blocks for typed-call arguments. Every typed call parses its arguments with these
// before any buffer is touched, so a wrong type or an out-of-range id never reaches a backend.

import { z } from 'zod';
import { DOMID } from './numbers.js';

const MAX_U64 = (1n << 64n) - 1n;

export const u8 = z.number().int().min(0).max(0xff);
export const u16 = z.number().int().min(0).max(0xffff);
export const u32 = z.number().int().min(0).max(0xffffffff);
/** 64-bit unsigned: a bigint, or a safe non-negative integer number. */
export const u64 = z
  .union([z.bigint(), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)])
  .transform((v) => BigInt(v))
  .pipe(z.bigint().min(0n).max(MAX_U64));
export const i64 = z
  .union([z.bigint(), z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER)])
  .transform((v) => BigInt(v))
  .pipe(z.bigint().min(-(1n << 63n)).max((1n << 63n) - 1n));

/** An ordinary domain id: below DOMID_FIRST_RESERVED (0x7ff0). */
export const domid = z.number().int().min(0).max(DOMID.FIRST_RESERVED - 1);
/** A domain id that may also be DOMID_SELF (what a domain says of itself). */
export const domidOrSelf = z.union([domid, z.literal(DOMID.SELF)]);

/** xen_domain_handle_t: 16 bytes, given as a UUID string or 16 raw bytes. */
export const domainHandle = z
  .union([
    z.uuid({ version: undefined }).or(z.string().regex(/^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$/)),
    z.instanceof(Uint8Array).refine((b) => b.length === 16, 'a domain handle is 16 bytes'),
  ])
  .transform((v) => (typeof v === 'string' ? uuidToBytes(v) : new Uint8Array(v)));

export function uuidToBytes(uuid: string): Uint8Array {
  return Uint8Array.from(Buffer.from(uuid.replace(/-/g, ''), 'hex'));
}

export function bytesToUuid(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
