// The Backend contract suite: one set of tests every backend must pass. It runs against the mock
// here (test/contract-mock.test.ts) and against the privcmd backend inside a real Xen dom0
// (test/xen/). Only behaviour the interface promises is checked; nothing mock-specific.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Backend } from '../src/backend.js';
import { ErrorCodes, XencallError } from '../src/errors.js';
import { HYPERCALL, XENVER, XEN_PAGE_SIZE } from '../src/hypercalls/numbers.js';

export interface ContractTarget {
  /** Opens a fresh backend. */
  open(): Backend;
  /** The Xen version the hypervisor under test runs, as (major << 16) | minor. */
  expectedVersion: number;
}

const zeros = [0n, 0n, 0n, 0n, 0n];

export function backendContract(name: string, target: ContractTarget): void {
  describe(`Backend contract: ${name}`, () => {
    it('issues a pointer-less hypercall and returns its raw result (xen_version)', () => {
      const b = target.open();
      try {
        assert.equal(b.hypercall(HYPERCALL.xen_version, [BigInt(XENVER.version), 0n, 0n, 0n, 0n]), BigInt(target.expectedVersion));
      } finally {
        b.close();
      }
    });

    it('returns -errno, never throws, for a hypercall the hypervisor rejects', () => {
      const b = target.open();
      try {
        // xen_version with a sub-op no Xen defines: Xen answers -ENOSYS (or -EINVAL); either is negative.
        const r = b.hypercall(HYPERCALL.xen_version, [0x7fffn, 0n, 0n, 0n, 0n]);
        assert.ok(r < 0n && r >= -4095n, `expected a negated errno, got ${r}`);
      } finally {
        b.close();
      }
    });

    it('returns -EFAULT when a pointer argument points outside any buffer', () => {
      const b = target.open();
      try {
        // XENVER_extraversion copies 16 bytes out to arg1; page 1 is never mapped in a process.
        const r = b.hypercall(HYPERCALL.xen_version, [BigInt(XENVER.extraversion), 0x1000n, 0n, 0n, 0n]);
        assert.equal(r, -14n);
      } finally {
        b.close();
      }
    });

    it('hands out page-aligned, zeroed, writable buffers Xen can write into', () => {
      const b = target.open();
      try {
        const mem = b.allocPages(2);
        assert.equal(mem.pages, 2);
        assert.equal(mem.address % BigInt(XEN_PAGE_SIZE), 0n);
        assert.equal(mem.bytes.length, 2 * XEN_PAGE_SIZE);
        assert.ok(mem.bytes.every((x) => x === 0));
        mem.bytes.fill(0xaa);
        const r = b.hypercall(HYPERCALL.xen_version, [BigInt(XENVER.extraversion), mem.address, 0n, 0n, 0n]);
        assert.equal(r, 0n);
        const nul = mem.bytes.indexOf(0);
        assert.ok(nul >= 0 && nul < 16, 'extraversion is a NUL-terminated string of at most 16 bytes');
        b.freePages(mem);
      } finally {
        b.close();
      }
    });

    it('refuses a second free of the same pages with XEN_ERR_BUFFER_FREED', () => {
      const b = target.open();
      try {
        const mem = b.allocPages(1);
        b.freePages(mem);
        assert.throws(() => b.freePages(mem), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.BUFFER_FREED);
      } finally {
        b.close();
      }
    });

    it('touchPages keeps the contents', () => {
      const b = target.open();
      try {
        const mem = b.allocPages(3);
        mem.bytes[0] = 1;
        mem.bytes[XEN_PAGE_SIZE] = 2;
        mem.bytes[2 * XEN_PAGE_SIZE + 7] = 3;
        b.touchPages(mem);
        assert.deepEqual([mem.bytes[0], mem.bytes[XEN_PAGE_SIZE], mem.bytes[2 * XEN_PAGE_SIZE + 7]], [1, 2, 3]);
        b.freePages(mem);
      } finally {
        b.close();
      }
    });

    it('reports whether buffers can fault as a boolean', () => {
      const b = target.open();
      try {
        assert.equal(typeof b.buffersNeverFault(), 'boolean');
      } finally {
        b.close();
      }
    });

    it('is unusable after close (XEN_ERR_CLOSED), and close is idempotent', () => {
      const b = target.open();
      b.close();
      b.close();
      const closed = (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.CLOSED;
      assert.throws(() => b.hypercall(HYPERCALL.xen_version, zeros), closed);
      assert.throws(() => b.allocPages(1), closed);
      assert.throws(() => b.buffersNeverFault(), closed);
    });

    it('runs hypercalls off the calling thread when it offers hypercallAsync, with the same result', async () => {
      const b = target.open();
      try {
        if (!b.hypercallAsync) return assert.fail('both backends offer hypercallAsync');
        const [a, c] = await Promise.all([
          b.hypercallAsync(HYPERCALL.xen_version, [BigInt(XENVER.version), 0n, 0n, 0n, 0n]),
          b.hypercallAsync(HYPERCALL.xen_version, [BigInt(XENVER.extraversion), 0x1000n, 0n, 0n, 0n]),
        ]);
        assert.equal(a, BigInt(target.expectedVersion));
        assert.equal(c, -14n, 'errno survives the trip through the worker thread');
      } finally {
        b.close();
      }
    });

    it('rejects a wrong argument count at the backend with a typed error', () => {
      const b = target.open();
      try {
        assert.throws(() => b.hypercall(HYPERCALL.xen_version, [0n]), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.VALIDATION);
      } finally {
        b.close();
      }
    });
  });
}
