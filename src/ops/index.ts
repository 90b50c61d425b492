// Binds the typed calls to a handle twice from one definition: a promise API
// (xc.domctl.getdomaininfo) and a synchronous one (xc.sync.domctl.getdomaininfo).

import type { Xencall, CallOptions } from '../xencall.js';
import { DOMCTL_OPS } from './domctl.js';
import { EVENT_CHANNEL_OPS, MEMORY_OP_OPS, XEN_VERSION_OPS } from './misc.js';
import { SYSCTL_OPS } from './sysctl.js';
import { HVM_OP_OPS } from './hvm.js';
import type { OpCtx, TypedOp } from './helpers.js';
import type { Program } from '../retry/runner.js';
import type { z } from 'zod';
import { callSignal } from '../input.js';

export const TYPED_OPS = {
  domctl: DOMCTL_OPS,
  sysctl: SYSCTL_OPS,
  xen_version: XEN_VERSION_OPS,
  memory_op: MEMORY_OP_OPS,
  event_channel_op: EVENT_CHANNEL_OPS,
  hvm_op: HVM_OP_OPS,
};

/**
 * What a caller passes: the input type of the row's zod schema (z.input), so the types are the
 * table's own: 64-bit fields take a number or a bigint, handles a UUID string or 16 bytes,
 * fields with a default may be left out. A call whose fields all have defaults (or that has none)
 * may be called without arguments.
 */
type ArgsOf<T> = T extends TypedOp<infer S, unknown> ? z.input<S> : never;
type ResultOf<T> = T extends { run: (...a: never[]) => Program<infer R> } ? R : never;
type AsyncCall<A, R> = {} extends A ? (args?: A, options?: CallOptions) => Promise<R> : (args: A, options?: CallOptions) => Promise<R>;
type SyncCall<A, R> = {} extends A ? (args?: A) => R : (args: A) => R;

type AsyncTree<T> = {
  [K in keyof T]: T[K] extends TypedOp ? AsyncCall<ArgsOf<T[K]>, ResultOf<T[K]>> : AsyncTree<T[K]>;
};
type SyncTree<T> = {
  [K in keyof T]: T[K] extends TypedOp ? SyncCall<ArgsOf<T[K]>, ResultOf<T[K]>> : SyncTree<T[K]>;
};

export type TypedCalls = AsyncTree<typeof TYPED_OPS>;
export type TypedCallsSync = SyncTree<typeof TYPED_OPS>;

function isTypedOp(x: unknown): x is TypedOp {
  return typeof x === 'object' && x !== null && 'run' in x && 'row' in x;
}

export function bindTypedCalls(xc: Xencall): { async: TypedCalls; sync: TypedCallsSync } {
  // Without a signal the context is the same for every call: built once.
  let plain: OpCtx | undefined;
  const ctx = (signal?: AbortSignal): OpCtx =>
    signal ? { pool: xc.pool, env: xc.env(signal), host: xc.host } : (plain ??= { pool: xc.pool, env: xc.env(), host: xc.host, sleepSync: xc.syncSleep });
  const build = (node: Record<string, unknown>, sync: boolean): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      if (isTypedOp(v)) {
        const runSync = v.runSync;
        out[k] = sync
          ? runSync
            ? (args?: unknown) => {
                xc.checkOpen();
                const parsed = v.parse(args);
                xc.checkXenVersion();
                return runSync(plain ?? ctx(), parsed, v.row);
              }
            : (args?: unknown) => {
                xc.checkOpen();
                const parsed = v.parse(args);
                xc.checkXenVersion();
                return xc.runSync(v.run(ctx(), parsed, v.row));
              }
          : (args?: unknown, options?: CallOptions) => {
              try {
                xc.checkOpen();
                const signal = callSignal(options);
                const parsed = v.parse(args);
                xc.checkXenVersion(signal);
                return xc.runAsync(v.run(ctx(signal), parsed, v.row), signal);
              } catch (e) {
                return Promise.reject(e);
              }
            };
      } else {
        out[k] = build(v as Record<string, unknown>, sync);
      }
    }
    return out;
  };
  return {
    async: build(TYPED_OPS, false) as unknown as TypedCalls,
    sync: build(TYPED_OPS, true) as unknown as TypedCallsSync,
  };
}
