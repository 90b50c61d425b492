// The privcmd backend on a machine without Xen: what can be checked without a hypervisor.
// /dev/null stands in for privcmd (its ioctl answers ENOTTY), and hypercallBufPath: null forces
// the locked-memory buffers, so opening, buffers, stale views, fork safety and errno capture all
// run for real. Hypercalls themselves are checked inside dom0 (test/xen/).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ErrorCodes, HypercallError, XencallError } from '../src/errors.js';
import { PrivcmdBackend, openPrivcmd, privcmdAdvice, readXenHostFacts, type PrivcmdOptions } from '../src/backends/privcmd.js';
import { XEN_PAGE_SIZE } from '../src/hypercalls/numbers.js';
import { privcmd_mmap_resource, privcmd_mmapbatch_v2 } from '../src/hypercalls/structs.js';
import { encode } from '../src/layout.js';
import { open } from '../src/index.js';
import { vmFlagsAt } from './helpers.js';

const ENOTTY = 25n;
const onNull: PrivcmdOptions = { privcmdPaths: ['/dev/null'], hypercallBufPath: null };
const zeros = [0n, 0n, 0n, 0n, 0n];

/** The lines of /proc/self/maps that cover `address`. */
function mapsAt(address: bigint): string[] {
  return fs
    .readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => {
      const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(l);
      return m !== null && BigInt(`0x${m[1]}`) <= address && address < BigInt(`0x${m[2]}`);
    });
}


function tmpPath(name: string): string {
  return path.join(os.tmpdir(), `xencall-privcmd-host-${process.pid}-${name}`);
}

describe('privcmd backend on the host (no Xen)', () => {
  describe('opening', () => {
    it('falls back through the paths in order and names every one when none opens', () => {
      const a = tmpPath('missing-a');
      const b = tmpPath('missing-b');
      assert.throws(
        () => new PrivcmdBackend({ privcmdPaths: [a, b], hypercallBufPath: null }),
        (e: unknown) => {
          assert.ok(e instanceof XencallError);
          assert.equal(e.code, ErrorCodes.BACKEND_UNAVAILABLE);
          assert.match(e.message, new RegExp(`${a}: ENOENT; ${b}: ENOENT`));
          assert.ok(e.message.endsWith(privcmdAdvice(readXenHostFacts())), 'the advice fits this machine');
          return true;
        },
      );
    });

    it('the advice fits the machine: no Xen, or Xen without privcmd; "run as root" only when not root', () => {
      const offXen = privcmdAdvice({ hypervisorType: null, procXen: false, uid: 0 });
      assert.match(offXen, /not running on Xen/);
      assert.doesNotMatch(offXen, /modprobe|root/);
      assert.match(privcmdAdvice({ hypervisorType: 'kvm', procXen: false, uid: 1000 }), /hypervisor is kvm/);
      const dom0Root = privcmdAdvice({ hypervisorType: 'xen', procXen: true, uid: 0 });
      assert.match(dom0Root, /modprobe xen-privcmd/);
      assert.match(dom0Root, /xenfs/);
      assert.doesNotMatch(dom0Root, /root/);
      assert.match(privcmdAdvice({ hypervisorType: 'xen', procXen: true, uid: 1000 }), /as root/);
      // This process runs as root here: the message must not tell it to.
      if (process.getuid?.() === 0) {
        assert.throws(() => new PrivcmdBackend({ privcmdPaths: [tmpPath('none')], hypercallBufPath: null }), (e: unknown) => e instanceof XencallError && !/as root/.test(e.message));
      }
    });

    it('the default paths are /dev/xen/privcmd then /proc/xen/privcmd, and both are named', () => {
      if (fs.existsSync('/dev/xen/privcmd') || fs.existsSync('/proc/xen/privcmd')) return;
      assert.throws(() => openPrivcmd(), (e: unknown) => {
        assert.ok(e instanceof XencallError && e.code === ErrorCodes.BACKEND_UNAVAILABLE);
        assert.match(e.message, /\/dev\/xen\/privcmd: ENOENT; \/proc\/xen\/privcmd: ENOENT/);
        return true;
      });
    });

    it('uses the next path only after ENOENT, ENXIO or ENODEV', () => {
      const b = new PrivcmdBackend({ privcmdPaths: [tmpPath('missing'), '/dev/null'], hypercallBufPath: null });
      try {
        assert.equal(b.privcmdPath, '/dev/null');
        assert.ok(b.fd >= 0);
      } finally {
        b.close();
      }
    });

    it('stops at an error other than a missing node, and says the rest were not tried', () => {
      // A directory cannot be opened O_RDWR: EISDIR is an answer about that node, not its absence.
      const dir = fs.mkdtempSync(tmpPath('dir'));
      try {
        assert.throws(
          () => new PrivcmdBackend({ privcmdPaths: [dir, '/dev/null'], hypercallBufPath: null }),
          (e: unknown) => {
            assert.ok(e instanceof XencallError && e.code === ErrorCodes.BACKEND_UNAVAILABLE);
            assert.match(e.message, new RegExp(`${dir}: EISDIR; /dev/null: not tried`));
            return true;
          },
        );
      } finally {
        fs.rmdirSync(dir);
      }
    });

    it('tolerates a missing buffer device (ENOENT) and then reports buffers that can fault', () => {
      const b = new PrivcmdBackend({ privcmdPaths: ['/dev/null'], hypercallBufPath: tmpPath('no-hypercall-dev') });
      try {
        assert.equal(b.bufFd, -1);
        assert.equal(b.buffersNeverFault(), false);
      } finally {
        b.close();
      }
    });

    it('refuses a buffer device that exists but cannot be opened', () => {
      const dir = fs.mkdtempSync(tmpPath('bufdir'));
      try {
        assert.throws(
          () => new PrivcmdBackend({ privcmdPaths: ['/dev/null'], hypercallBufPath: dir }),
          (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.BACKEND_UNAVAILABLE && /EISDIR/.test(e.message),
        );
      } finally {
        fs.rmdirSync(dir);
      }
    });

    it('opens its fds close-on-exec', () => {
      const b = new PrivcmdBackend(onNull);
      try {
        const flags = fs.readFileSync(`/proc/self/fdinfo/${b.fd}`, 'utf8');
        const m = /flags:\s+([0-7]+)/.exec(flags);
        assert.ok(m);
        assert.ok((parseInt(m[1]!, 8) & 0o2000000) !== 0, `O_CLOEXEC missing: ${m[1]}`);
        assert.ok((parseInt(m[1]!, 8) & 0o3) === 0o2, 'opened O_RDWR');
      } finally {
        b.close();
      }
    });
  });

  describe('ioctl and errno', () => {
    it('returns the ioctl errno negated, never throws (ENOTTY from /dev/null)', () => {
      const b = new PrivcmdBackend(onNull);
      try {
        assert.equal(b.hypercall(17, zeros), -ENOTTY);
        assert.equal(b.hypercall(17, [1n, 2n, 3n, 4n, 0xffffffffffffffffn]), -ENOTTY);
      } finally {
        b.close();
      }
    });

    it('carries errno back from the worker thread (hypercallAsync), for overlapping calls', async () => {
      const b = new PrivcmdBackend(onNull);
      try {
        const rs = await Promise.all(Array.from({ length: 16 }, () => b.hypercallAsync(17, zeros)));
        assert.deepEqual(rs, Array(16).fill(-ENOTTY));
      } finally {
        b.close();
      }
    });

    it('closing with async calls in flight keeps the fd until they finish', async () => {
      const b = new PrivcmdBackend(onNull);
      const fd = b.fd;
      const p = b.hypercallAsync(17, zeros);
      b.close();
      assert.equal(await p, -ENOTTY);
      assert.throws(() => fs.fstatSync(fd), /EBADF/);
    });

    it('restrict() issues IOCTL_PRIVCMD_RESTRICT and reports the kernel errno as a typed error', () => {
      const b = new PrivcmdBackend(onNull);
      try {
        assert.throws(() => b.restrict(1), (e: unknown) => e instanceof HypercallError && e.errno === 25 && e.opName === 'privcmd.restrict');
        assert.equal(b.restricted, null);
        assert.throws(() => b.restrict(0x10000), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.VALIDATION);
      } finally {
        b.close();
      }
    });

    it('rejects a wrong argument count with a typed error', () => {
      const b = new PrivcmdBackend(onNull);
      try {
        assert.throws(() => b.hypercall(17, [0n]), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.VALIDATION);
      } finally {
        b.close();
      }
    });
  });

  describe('locked buffers (no /dev/xen/hypercall)', () => {
    it('allocates page-aligned, zeroed, locked, do-not-fork pages', () => {
      const b = new PrivcmdBackend(onNull);
      try {
        assert.equal(b.buffersNeverFault(), false);
        const mem = b.allocPages(3);
        assert.equal(mem.address % BigInt(XEN_PAGE_SIZE), 0n);
        assert.equal(mem.bytes.length, 3 * XEN_PAGE_SIZE);
        assert.ok(mem.bytes.every((x) => x === 0));
        const flags = vmFlagsAt(mem.address);
        assert.ok(flags.includes('lo'), `VM_LOCKED missing: ${flags.join(' ')}`);
        assert.ok(flags.includes('dc'), `VM_DONTCOPY (MADV_DONTFORK) missing: ${flags.join(' ')}`);
        // Every page is resident: MAP_LOCKED populated it and the zero fill touched it.
        const smaps = fs.readFileSync('/proc/self/smaps', 'utf8');
        const start = smaps.indexOf(`${mem.address.toString(16)}-`);
        const rss = /Rss:\s+(\d+) kB/.exec(smaps.slice(start))!;
        assert.ok(Number(rss[1]) >= 12, `Rss ${rss[1]} kB for 3 pages`);
        b.freePages(mem);
      } finally {
        b.close();
      }
    });

    it('frees: the range loses its locked pages but stays mapped, and a second free is a typed error', () => {
      const b = new PrivcmdBackend(onNull);
      try {
        const mem = b.allocPages(2);
        mem.bytes.fill(0x5a);
        b.freePages(mem);
        const flags = vmFlagsAt(mem.address);
        assert.ok(!flags.includes('lo') && !flags.includes('dc'), `freed range still locked/dontfork: ${flags.join(' ')}`);
        assert.throws(() => b.freePages(mem), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.BUFFER_FREED);
        assert.throws(() => b.touchPages(mem), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.BUFFER_FREED);
      } finally {
        b.close();
      }
    });

    it('a stale view of freed pages reads zeros and takes writes without crashing, and never aliases a newer buffer', () => {
      const b = new PrivcmdBackend(onNull);
      try {
        const first = b.allocPages(4);
        const stale = first.bytes;
        const staleSub = stale.subarray(XEN_PAGE_SIZE, XEN_PAGE_SIZE + 16);
        stale.fill(0xee);
        b.freePages(first);
        assert.ok(stale.every((x) => x === 0), 'a freed buffer reads as zeros');
        assert.equal(staleSub[0], 0);
        stale[5] = 1; // would be SIGSEGV on unmapped memory
        staleSub[3] = 2;
        // While the stale view lives, its range is not handed out again.
        const fresh = Array.from({ length: 8 }, () => b.allocPages(4));
        for (const f of fresh) {
          assert.notEqual(f.address, first.address);
          f.bytes.fill(0x11);
        }
        assert.equal(stale[5], 1);
        assert.equal(stale[6], 0);
        for (const f of fresh) {
          assert.ok(f.bytes.every((x) => x === 0x11), 'a stale view wrote into a live buffer');
          b.freePages(f);
        }
      } finally {
        b.close();
      }
    });

    it('unmaps a freed range once no view of it is left (garbage collected)', async () => {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      // In a function of its own, so no stack slot of this test keeps a view alive.
      const allocAndFree = (): bigint[] => {
        const b = new PrivcmdBackend(onNull);
        try {
          return Array.from({ length: 4 }, () => {
            const mem = b.allocPages(5);
            b.freePages(mem);
            return mem.address;
          });
        } finally {
          b.close();
        }
      };
      const addresses = allocAndFree();
      assert.ok(addresses.every((a) => mapsAt(a).length === 1), 'freed ranges stay mapped while views may exist');
      for (let i = 0; i < 20 && addresses.some((a) => mapsAt(a).length > 0); i++) {
        gc();
        await new Promise((r) => setTimeout(r, 20));
      }
      for (const a of addresses) assert.deepEqual(mapsAt(a), [], `0x${a.toString(16)} still mapped after its views were collected`);
    });

    it('many alloc/free rounds leave no mappings behind (1..9 pages)', async () => {
      const gc = runInNewContext('gc') as (() => void) | undefined;
      const count = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').length;
      const b = new PrivcmdBackend(onNull);
      const before = count();
      try {
        for (let round = 0; round < 300; round++) {
          const mem = b.allocPages(1 + (round % 9));
          mem.bytes[mem.bytes.length - 1] = round & 0xff;
          b.freePages(mem);
        }
      } finally {
        b.close();
      }
      for (let i = 0; i < 20 && count() > before + 8; i++) {
        gc?.();
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(count() <= before + 8, `mappings grew from ${before} to ${count()}`);
    });

    it('close() frees every live buffer and later use is XEN_ERR_CLOSED', () => {
      const b = new PrivcmdBackend(onNull);
      const mem = b.allocPages(1);
      const view = mem.bytes;
      view[0] = 9;
      b.close();
      assert.equal(view[0], 0);
      assert.throws(() => b.allocPages(1), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.CLOSED);
      assert.throws(() => b.freePages(mem), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.CLOSED);
    });

    it('buffer contents survive child_process spawns (fork) made while they are live', async () => {
      const b = new PrivcmdBackend(onNull);
      try {
        const bufs = Array.from({ length: 4 }, (_, i) => b.allocPages(i + 1));
        let stop = false;
        let rounds = 0;
        const writer = (async () => {
          while (!stop) {
            for (const [i, m] of bufs.entries()) {
              const v = (rounds + i) & 0xff;
              m.bytes.fill(v);
              await new Promise((r) => setImmediate(r));
              assert.ok(
                m.bytes.every((x) => x === v),
                `buffer ${i} changed under a fork in round ${rounds}`,
              );
            }
            rounds++;
          }
        })();
        for (let i = 0; i < 20; i++) {
          await new Promise<void>((resolve, reject) => {
            const child = spawn('true', [], { stdio: 'ignore' });
            child.on('error', reject);
            child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`true exited ${code}`))));
          });
        }
        stop = true;
        await writer;
        assert.ok(rounds > 0);
        for (const m of bufs) b.freePages(m);
      } finally {
        b.close();
      }
    });
  });

  describe('through the handle (open({ backend }))', () => {
    it('allocBuffer/freeBuffer reuse 1-4 page buffers, and a freed HypercallBuffer throws XEN_ERR_BUFFER_FREED', async () => {
      const xc = await open({ backend: new PrivcmdBackend(onNull) });
      try {
        assert.equal(xc.buffersNeverFault(), false);
        const a = xc.allocBuffer(100);
        a.bytes[0] = 7;
        const addr = a.address;
        xc.freeBuffer(a);
        assert.throws(() => a.bytes, (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.BUFFER_FREED);
        const b = xc.allocBuffer(200);
        assert.equal(b.address, addr, 'the 1-page cache hands the same pages back');
        assert.equal(b.bytes[0], 0, 'and zeroed');
        xc.freeBuffer(b);
        const big = xc.allocBufferPages(6);
        xc.freeBufferPages(big);
      } finally {
        xc.close();
      }
    });

    it('a raw hypercall on /dev/null fails with ENOTTY as a HypercallError', async () => {
      const xc = await open({ backend: new PrivcmdBackend(onNull) });
      try {
        await assert.rejects(xc.hypercall(17, [0]), (e: unknown) => e instanceof HypercallError && e.errno === 25);
        assert.throws(() => xc.hypercallSync(17, [0]), (e: unknown) => e instanceof HypercallError && e.errno === 25);
      } finally {
        xc.close();
      }
    });
  });
  describe('foreign maps without Xen (/dev/zero and /dev/null stand in for privcmd)', () => {
    const onZero: PrivcmdOptions = { privcmdPaths: ['/dev/zero'], hypercallBufPath: null };
    const devZeroMaps = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.endsWith('/dev/zero (deleted)') || l.endsWith('/dev/zero')).length;

    it('encodes struct privcmd_mmapbatch_v2 and privcmd_mmap_resource as the uapi header lays them out', () => {
      const v = new DataView(new ArrayBuffer(32));
      encode(privcmd_mmapbatch_v2, v, 0, { num: 3, dom: 0x7fe, addr: 0x7f0000001000n, arr: 0x1122334455n, err: 0x66778899aan });
      assert.deepEqual(
        [v.getUint32(0, true), v.getUint16(4, true), v.getBigUint64(8, true), v.getBigUint64(16, true), v.getBigUint64(24, true)],
        [3, 0x7fe, 0x7f0000001000n, 0x1122334455n, 0x66778899aan],
      );
      const r = new DataView(new ArrayBuffer(32));
      encode(privcmd_mmap_resource, r, 0, { dom: 9, type: 1, id: 0, idx: 5, num: 2n, addr: 0x7f0000002000n });
      assert.deepEqual([r.getUint16(0, true), r.getUint32(4, true), r.getUint32(8, true), r.getUint32(12, true), r.getBigUint64(16, true), r.getBigUint64(24, true)], [9, 1, 0, 5, 2n, 0x7f0000002000n]);
    });

    it('MMAPBATCH_V2 refused by the device (ENOTTY, 25) is a typed error, and the mapping it made is gone', () => {
      const b = new PrivcmdBackend(onZero);
      try {
        const before = devZeroMaps();
        assert.throws(
          () => b.mapForeign(1, new BigUint64Array([1n, 2n, 3n]), true),
          (e: unknown) => e instanceof HypercallError && e.errno === 25 && e.opName === 'privcmd.mmapbatch_v2' && /MMAPBATCH_V2 of 3 page\(s\) of domain 1/.test(e.message),
        );
        assert.equal(devZeroMaps(), before, 'the mmap of the device was undone');
      } finally {
        b.close();
      }
    });

    it('MMAP_RESOURCE on a device without it reports EOPNOTSUPP, as libxenforeignmemory does', () => {
      const b = new PrivcmdBackend(onZero);
      try {
        assert.throws(() => b.mapResource(1, 1, 0, 0n, 2, false), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EOPNOTSUPP');
      } finally {
        b.close();
      }
    });

    it('a device that cannot be mmapped (/dev/null: ENODEV) fails the map with that errno', () => {
      const b = new PrivcmdBackend(onNull);
      try {
        assert.throws(() => b.mapForeign(1, new BigUint64Array([1n]), false), (e: unknown) => e instanceof HypercallError && e.errnoName === 'ENODEV');
      } finally {
        b.close();
      }
    });

    it('through the handle: validation first, then the device\'s answer; closed is XEN_ERR_CLOSED', async () => {
      const xc = await open({ backend: new PrivcmdBackend(onZero) });
      assert.throws(() => xc.foreignMemory.map(1, [2 ** 40]), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.VALIDATION);
      assert.throws(() => xc.foreignMemory.map(1, new Uint32Array([7])), (e: unknown) => e instanceof HypercallError && e.errno === 25);
      xc.close();
      assert.throws(() => xc.foreignMemory.map(1, [7]), (e: unknown) => e instanceof XencallError && e.code === ErrorCodes.CLOSED);
    });
  });
});
