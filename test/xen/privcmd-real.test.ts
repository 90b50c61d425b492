// Real checks against a real Xen, run inside dom0 by scripts/test-xen.sh (npm run test:xen).
// Expected values come from the harness (XENCALL_VM_*, see vm-env.ts) or from Xen itself (its
// boot banner in the console ring), never from the code under test.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { Backend, BackendPages } from '../../src/backend.js';
import { PrivcmdBackend } from '../../src/backends/privcmd.js';
import { HypercallError, XencallError } from '../../src/errors.js';
import { DOMCTL, HYPERCALL, SYSCTL, XENMEM, XENVER, XEN_DOMCTL_INTERFACE_VERSION, XEN_PAGE_SIZE, XEN_SYSCTL_INTERFACE_VERSION } from '../../src/hypercalls/numbers.js';
import { open, type Xencall } from '../../src/index.js';
import { vmFlagsAt } from '../helpers.js';
import { vm } from './vm-env.js';

const EPERM = 1;
const ENOSYS = 38;
const args = (...a: bigint[]) => [...a, 0n, 0n, 0n, 0n, 0n].slice(0, 5);


/** Writes struct xen_domctl for getdomaininfo(domain) at the start of `mem` (header layout from xen-abi-facts §3). */
function putGetdomaininfo(mem: BackendPages, domain: number): void {
  const v = new DataView(mem.bytes.buffer, mem.bytes.byteOffset, 144);
  v.setUint32(0, DOMCTL.getdomaininfo, true);
  v.setUint32(4, XEN_DOMCTL_INTERFACE_VERSION, true);
  v.setUint16(8, domain, true);
}

/** What Xen wrote back: domain@16, flags@20, tot_pages@24, max_pages@32, nr_online_vcpus@80, max_vcpu_id@84. */
function readGetdomaininfo(mem: BackendPages) {
  const v = new DataView(mem.bytes.buffer, mem.bytes.byteOffset, 144);
  return {
    domain: v.getUint16(16, true),
    flags: v.getUint32(20, true),
    tot_pages: v.getBigUint64(24, true),
    max_pages: v.getBigUint64(32, true),
    nr_online_vcpus: v.getUint32(80, true),
    max_vcpu_id: v.getUint32(84, true),
  };
}

const mode = vm.noHypercallDev ? 'locked buffers, no /dev/xen/hypercall' : '/dev/xen/hypercall buffers';

describe(`privcmd on real Xen ${vm.xenVersion} (${mode})`, () => {
  let xc: Xencall;
  before(async () => {
    xc = await open();
  });
  after(() => xc?.close());

  it('opens /dev/xen/privcmd, and falls back to /proc/xen/privcmd (xenfs) when the first node is missing', () => {
    assert.equal((xc.backend as PrivcmdBackend).privcmdPath, '/dev/xen/privcmd');
    const b = new PrivcmdBackend({ privcmdPaths: ['/dev/xen/no-such-node', '/proc/xen/privcmd'] });
    try {
      assert.equal(b.privcmdPath, '/proc/xen/privcmd');
      assert.equal(b.hypercall(HYPERCALL.xen_version, args(BigInt(XENVER.version))), BigInt(vm.xenVersionCode));
    } finally {
      b.close();
    }
  });

  it(`buffersNeverFault() is ${!vm.noHypercallDev}, and the buffers are the kind that says`, () => {
    assert.equal(xc.buffersNeverFault(), !vm.noHypercallDev);
    const b = xc.backend as PrivcmdBackend;
    assert.equal(b.bufFd >= 0, !vm.noHypercallDev);
    const mem = b.allocPages(2);
    try {
      const flags = vmFlagsAt(mem.address);
      if (vm.noHypercallDev) {
        assert.ok(flags.includes('lo') && flags.includes('dc'), `locked buffers need VM_LOCKED and VM_DONTCOPY: ${flags.join(' ')}`);
      } else {
        assert.ok(flags.includes('io'), `privcmd-buf pages are VM_IO: ${flags.join(' ')}`);
      }
    } finally {
      b.freePages(mem);
    }
  });

  it('xen_version equals the version Xen printed at boot (console ring banner) and the harness installed', async () => {
    const raw = xc.backend.hypercall(HYPERCALL.xen_version, args(BigInt(XENVER.version)));
    assert.equal(raw, BigInt(vm.xenVersionCode), `XENVER_version 0x${raw.toString(16)} vs XENCALL_VM_XEN_VERSION ${vm.xenVersion}`);
    const extra = await xc.xen_version.extraversion({});
    const { text } = await xc.sysctl.readconsole({ clear: false, incremental: false, index: 0, size: 1 << 16 });
    const banner = /Xen version (\d+)\.(\d+)(\S*) /.exec(text);
    assert.ok(banner, `no "Xen version" banner in the ${text.length} bytes of Xen's console ring`);
    assert.equal((Number(banner[1]) << 16) | Number(banner[2]), Number(raw), `banner: ${banner[0]}`);
    assert.equal(`${banner[1]}.${banner[2]}${banner[3]}`, `${Number(raw) >> 16}.${Number(raw) & 0xffff}${extra}`, 'major.minor + extraversion spell the banner');
    assert.ok(`${banner[1]}.${banner[2]}${banner[3]}`.startsWith(vm.xenVersion), `banner ${banner[0]} vs package ${vm.xenVersion}`);
  });

  it('getdomaininfo(0): dom0 is running with the vcpus and memory it booted with', async () => {
    const d = await xc.domctl.getdomaininfo({ domain: 0 });
    assert.equal(d.domid, 0);
    assert.ok(d.running, `dom0 runs this very test; flags 0x${d.flags.toString(16)}`);
    assert.ok(!d.dying && !d.shutdown && !d.paused, `flags 0x${d.flags.toString(16)}`);
    assert.equal(d.nr_online_vcpus, vm.vcpus, 'dom0_max_vcpus');
    assert.equal(d.max_vcpu_id, vm.vcpus - 1);
    assert.equal(d.max_pages, BigInt(vm.dom0MemMb) * 256n, 'dom0_mem=…,max:… in 4 KiB pages');
    assert.ok(d.tot_pages > 0n && d.tot_pages <= d.max_pages, `tot_pages ${d.tot_pages}`);
  });

  it("physinfo's nr_cpus matches the VM's CPUs, its memory fits the VM, and max_mfn + 1 is XENMEM_maximum_ram_page", async () => {
    const p = await xc.sysctl.physinfo({});
    assert.equal(p.nr_cpus, vm.qemuSmp, 'qemu -smp');
    assert.equal(p.max_cpu_id, vm.qemuSmp - 1);
    const vmPages = BigInt(vm.qemuMemMb) * 256n;
    assert.ok(p.total_pages <= vmPages && p.total_pages > (vmPages * 9n) / 10n, `total_pages ${p.total_pages} vs qemu -m ${vm.qemuMemMb}M`);
    // xen/common/memory.c: XENMEM_maximum_ram_page returns max_page; xen/arch/x86/mm.c
    // get_upper_mfn_bound() (physinfo.max_mfn) is max_page - 1 without memory hotplug.
    const viaSync = xc.backend.hypercall(HYPERCALL.memory_op, args(BigInt(XENMEM.maximum_ram_page)));
    const viaAsync = await xc.backend.hypercallAsync!(HYPERCALL.memory_op, args(BigInt(XENMEM.maximum_ram_page)));
    const typed = await xc.memory_op.maximum_ram_page({});
    assert.equal(typeof viaSync, 'bigint');
    assert.ok(viaSync > 0n);
    assert.equal(viaSync, p.max_mfn + 1n);
    assert.equal(viaAsync, viaSync);
    assert.equal(typed, viaSync);
  });

  it("an unknown sub-op returns the hypervisor's own error (ENOSYS), raw and through the handle", async () => {
    // xen/common/kernel.c do_xen_version: an unknown cmd falls out of the switch to -ENOSYS
    // (dom0 passes XSM's XSM_PRIV check for unknown cmds).
    assert.equal(xc.backend.hypercall(HYPERCALL.xen_version, args(0x7fffn)), -BigInt(ENOSYS));
    assert.equal(await xc.backend.hypercallAsync!(HYPERCALL.xen_version, args(0x7fffn)), -BigInt(ENOSYS));
    await assert.rejects(xc.hypercall(HYPERCALL.xen_version, [0x7fff]), (e: unknown) => e instanceof HypercallError && e.errno === ENOSYS && e.errnoName === 'ENOSYS');
    // xen/arch/x86/sysctl.c arch_do_sysctl: an unknown cmd is -ENOSYS too.
    const buf = xc.allocBuffer(136);
    try {
      const v = buf.view();
      v.setUint32(0, 0x7fff, true);
      v.setUint32(4, XEN_SYSCTL_INTERFACE_VERSION, true);
      await assert.rejects(xc.hypercall(HYPERCALL.sysctl, [buf.address]), (e: unknown) => e instanceof HypercallError && e.errno === ENOSYS);
      // And a stale interface version is refused before the cmd is looked at (-EACCES).
      v.setUint32(0, SYSCTL.physinfo, true);
      v.setUint32(4, XEN_SYSCTL_INTERFACE_VERSION - 1, true);
      await assert.rejects(xc.hypercall(HYPERCALL.sysctl, [buf.address]), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EACCES');
    } finally {
      xc.freeBuffer(buf);
    }
  });

  it('restrict(domid) makes raw hypercalls on that fd fail with EPERM, and only on that fd', async () => {
    const restricted = new PrivcmdBackend();
    try {
      assert.equal(restricted.hypercall(HYPERCALL.xen_version, args(BigInt(XENVER.version))), BigInt(vm.xenVersionCode));
      restricted.restrict(1);
      assert.equal(restricted.restricted, 1);
      assert.equal(restricted.hypercall(HYPERCALL.xen_version, args(BigInt(XENVER.version))), -BigInt(EPERM));
      assert.equal(await restricted.hypercallAsync(HYPERCALL.xen_version, args(BigInt(XENVER.version))), -BigInt(EPERM));
      // The same domid again is accepted; another one is EINVAL (privcmd_ioctl_restrict).
      restricted.restrict(1);
      assert.throws(() => restricted.restrict(2), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EINVAL');
      // Another handle is a different fd and is not restricted.
      assert.equal(xc.backend.hypercall(HYPERCALL.xen_version, args(BigInt(XENVER.version))), BigInt(vm.xenVersionCode));
      const rxc = await open({ backend: restricted });
      await assert.rejects(rxc.xen_version.version({}), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EPERM');
      rxc.close();
    } finally {
      restricted.close();
    }
  });

  it('fork safety: spawning children while hypercalls write into live buffers corrupts nothing', async () => {
    const b = new PrivcmdBackend();
    const syncBuf = b.allocPages(2);
    // Several worker-thread calls in flight at once widen the window a fork can land in.
    const asyncBufs = Array.from({ length: 3 }, () => b.allocPages(1));
    // A second page that no hypercall touches: it must keep its pattern through every fork.
    const sentinel = syncBuf.bytes.subarray(XEN_PAGE_SIZE);
    const expectDom0 = (mem: BackendPages, where: string) => {
      const d = readGetdomaininfo(mem);
      assert.equal(d.domain, 0, where);
      assert.equal(d.nr_online_vcpus, vm.vcpus, where);
      assert.equal(d.max_pages, BigInt(vm.dom0MemMb) * 256n, where);
      assert.ok(d.tot_pages > 0n, where);
    };
    let stop = false;
    let spawned = 0;
    let syncCalls = 0;
    let asyncCalls = 0;
    try {
      // A failing loop stops the others at once, so its error is reported, not a timeout.
      const guarded = (loop: () => Promise<void>) =>
        loop().catch((e: unknown) => {
          stop = true;
          throw e;
        });
      // Hypercalls on koffi's worker thread, so Xen can be writing into a buffer at the moment
      // the main thread forks (without MADV_DONTFORK this loop sees EFAULT within seconds).
      const asyncLoops = asyncBufs.map((asyncBuf, lane) =>
        guarded(async () => {
          while (!stop) {
            asyncBuf.bytes.fill(0xa5, 0, 256);
            putGetdomaininfo(asyncBuf, 0);
            const r = await b.hypercallAsync(HYPERCALL.domctl, args(asyncBuf.address));
            assert.equal(r, 0n, `async getdomaininfo #${asyncCalls} (lane ${lane}) returned ${r}`);
            expectDom0(asyncBuf, `async call #${asyncCalls} (lane ${lane})`);
            asyncCalls++;
          }
        }),
      );
      const syncLoop = guarded(async () => {
        while (!stop) {
          const pattern = syncCalls & 0xff;
          sentinel.fill(pattern);
          for (let i = 0; i < 20; i++) {
            syncBuf.bytes.fill(0x5a, 0, 256);
            putGetdomaininfo(syncBuf, 0);
            const r = b.hypercall(HYPERCALL.domctl, args(syncBuf.address));
            assert.equal(r, 0n, `getdomaininfo #${syncCalls} returned ${r}`);
            expectDom0(syncBuf, `sync call #${syncCalls}`);
            syncCalls++;
          }
          await new Promise((r) => setImmediate(r));
          assert.ok(sentinel.every((x) => x === pattern), `the untouched page changed across a fork (call ${syncCalls})`);
        }
      });
      // Handled here and awaited below, so an early failure is not an unhandled rejection.
      const loops = Promise.all([...asyncLoops, syncLoop]);
      loops.catch(() => {});
      const deadline = Date.now() + 4000;
      while (!stop && (Date.now() < deadline || spawned < 10)) {
        await new Promise<void>((resolve, reject) => {
          const child = spawn('true', [], { stdio: 'ignore' });
          child.on('error', reject);
          child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`true exited with ${code}`))));
        });
        spawned++;
      }
      stop = true;
      await loops;
      assert.ok(spawned >= 10 && syncCalls > 0 && asyncCalls > 0, `spawned ${spawned}, sync ${syncCalls}, async ${asyncCalls}`);
      console.log(`# fork safety: ${spawned} children spawned during ${syncCalls} sync and ${asyncCalls} async getdomaininfo calls`);
    } finally {
      stop = true;
      b.close();
    }
  });

  it('runs a long-running op (destroydomain) off the event loop through hypercallAsync, with errno intact', async () => {
    const real = new PrivcmdBackend();
    let asyncCalls = 0;
    // A pass-through that counts which path the runner takes.
    const counting: Backend = {
      kind: real.kind,
      fd: real.fd,
      hypercall: (op, a) => real.hypercall(op, a),
      hypercallAsync: (op, a) => {
        asyncCalls++;
        return real.hypercallAsync(op, a);
      },
      allocPages: (n) => real.allocPages(n),
      freePages: (m) => real.freePages(m),
      buffersNeverFault: () => real.buffersNeverFault(),
      touchPages: (m) => real.touchPages(m),
      close: () => real.close(),
    };
    const h = await open({ backend: counting });
    let domid: number | undefined;
    try {
      ({ domid } = await h.domctl.createdomain({ handle: 'c0ffee00-1111-4222-8333-444444444444', max_vcpus: 1 }));
      assert.ok(domid > 0 && domid < 0x7ff0, `domid ${domid}`);
      const info = await h.domctl.getdomaininfo({ domain: domid });
      assert.equal(info.domid, domid);
      assert.equal(asyncCalls, 0, 'short ops stay on the calling thread');

      let ticks = 0;
      const timer = setInterval(() => ticks++, 0);
      await h.domctl.destroydomain({ domain: domid });
      clearInterval(timer);
      assert.equal(asyncCalls, 1, 'destroydomain (longRunning) went through hypercallAsync');
      const destroyed = domid;
      domid = undefined;
      await assert.rejects(h.domctl.getdomaininfo({ domain: destroyed }), (e: unknown) => e instanceof XencallError && /ESRCH/.test(`${(e as HypercallError).errnoName} ${e.message}`));

      // errno through the worker thread: destroying it again is Xen's ESRCH, not a stale errno.
      await assert.rejects(h.domctl.destroydomain({ domain: destroyed }), (e: unknown) => e instanceof HypercallError && e.errnoName === 'ESRCH');
      assert.equal(asyncCalls, 2);
      console.log(`# destroydomain of d${destroyed}: event loop ticked ${ticks} times meanwhile`);
    } finally {
      if (domid !== undefined) h.sync.domctl.destroydomain({ domain: domid });
      h.close();
    }
  });
});
