// The typed calls and the CLI against a real Xen, inside dom0 (npm run test:xen). Expected values
// come from the harness (vm-env.ts), from Xen itself through other paths (its console banner,
// the dom0 kernel's /sys/hypervisor), or from an earlier call's effect — never from the code
// under test agreeing with itself.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { HVM_PARAM, HypercallError, findDomainByHandle, findLeakedPorts, open, type Xencall } from '../../src/index.js';
import { domainsJson, infoJson } from '../../src/cli/json-schemas.js';
import { vm } from './vm-env.js';

const sysfs = (p: string) => fs.readFileSync(`/sys/hypervisor/${p}`, 'utf8').trim();

describe(`typed calls on real Xen ${vm.xenVersion}`, () => {
  let xc: Xencall;
  const handle = randomUUID();
  let domid = -1;

  before(async () => {
    xc = await open();
  });
  after(async () => {
    // Never leave a domain behind, whatever failed.
    if (domid > 0) await xc.domctl.destroydomain({ domain: domid }).catch(() => undefined);
    xc.close();
  });

  it('version, extraversion and capabilities agree with what the dom0 kernel reads from Xen', async () => {
    const v = await xc.xen_version.version();
    assert.equal(`${v.major}.${v.minor}`, `${sysfs('version/major')}.${sysfs('version/minor')}`);
    assert.equal(await xc.xen_version.extraversion(), sysfs('version/extra'));
    // Xen's string ends in a space the kernel's sysfs file trims.
    assert.equal((await xc.xen_version.capabilities()).trimEnd(), sysfs('properties/capabilities'));
    assert.ok(`${v.major}.${v.minor}${await xc.xen_version.extraversion()}`.startsWith(vm.xenVersion));
    assert.equal(await xc.xen_version.pagesize(), 4096);
    const ci = await xc.xen_version.compile_info();
    assert.ok(ci.compiler.length > 0 && ci.compile_date.length > 0);
  });

  it('physinfo, cputopoinfo, numainfo and getcpuinfo agree with the VM and with each other', async () => {
    const p = await xc.sysctl.physinfo();
    assert.equal(p.nr_cpus, vm.qemuSmp);
    const topo = await xc.sysctl.cputopoinfo();
    assert.equal(topo.length, p.max_cpu_id + 1);
    const numa = await xc.sysctl.numainfo();
    assert.equal(numa.nodes.length, p.nr_nodes);
    const idle = await xc.sysctl.getcpuinfo();
    assert.equal(idle.length, p.nr_cpus);
    const s = await xc.sysctl.sched_id();
    assert.ok(s.name, `scheduler ${s.sched_id} has a name`);
  });

  it('creates a domain with a handle, sizes it, pauses and unpauses it, reads vcpu info, and destroys it', async () => {
    ({ domid } = await xc.domctl.createdomain({ handle, max_vcpus: 2 }));
    assert.ok(domid > 0);
    let info = await xc.domctl.getdomaininfo({ domain: domid });
    assert.equal(info.handle, handle);
    assert.equal(info.paused, true, 'a new domain is paused by its creator');
    assert.equal(info.max_vcpu_id, 0xffffffff, 'createdomain records max_vcpus; no vcpu exists yet');
    assert.equal(info.nr_online_vcpus, 0);

    await xc.domctl.max_mem({ domain: domid, max_memkb: 64n * 1024n });
    await xc.domctl.max_vcpus({ domain: domid, max: 2 });
    info = await xc.domctl.getdomaininfo({ domain: domid });
    assert.equal(info.max_vcpu_id, 1, 'max_vcpus created vcpus 0 and 1');
    assert.equal(info.max_pages, (64n * 1024n) / 4n);
    assert.equal(await xc.memory_op.maximum_reservation({ domid }), (64n * 1024n) / 4n);
    assert.equal(await xc.memory_op.current_reservation({ domid }), info.tot_pages);

    await xc.domctl.unpausedomain({ domain: domid });
    assert.equal((await xc.domctl.getdomaininfo({ domain: domid })).paused, false);
    await xc.domctl.pausedomain({ domain: domid });
    await xc.domctl.pausedomain({ domain: domid });
    assert.equal((await xc.domctl.getdomaininfo({ domain: domid })).paused, true);
    await xc.domctl.unpausedomain({ domain: domid });
    assert.equal((await xc.domctl.getdomaininfo({ domain: domid })).paused, true, 'still paused once: the count was 2');
    await xc.domctl.unpausedomain({ domain: domid });

    // Affinity round-trips through Xen (which writes the effective map back into the input).
    await xc.domctl.setvcpuaffinity({ domain: domid, vcpu: 0, hard: [0] });
    assert.deepEqual((await xc.domctl.getvcpuaffinity({ domain: domid, vcpu: 0 })).hard, [0]);
    // A vcpu without a context has none to read; a PV domain has no HVM context; Debian's Xen
    // has no shadow paging for PV log-dirty. Each is Xen's own typed error, as the mock gives.
    const errno = (name: string) => (e: unknown) => e instanceof HypercallError && e.errnoName === name;
    await assert.rejects(xc.domctl.getvcpucontext({ domain: domid, vcpu: 0 }), errno('ENODATA'));
    await assert.rejects(xc.domctl.gethvmcontext({ domain: domid }), errno('EINVAL'));
    await assert.rejects(xc.domctl.shadow_op.enable_logdirty({ domain: domid }), (e: unknown) => e instanceof HypercallError);

    const vcpu = await xc.domctl.getvcpuinfo({ domain: domid, vcpu: 1 });
    assert.equal(vcpu.online, false, 'a vcpu without a context is down');
    const aff = await xc.domctl.getvcpuaffinity({ domain: domid, vcpu: 0 });
    assert.ok(aff.hard && aff.hard.length > 0, 'a new vcpu may run somewhere');
    await xc.domctl.settimeoffset({ domain: domid, time_offset_seconds: 3600n });
    await assert.rejects(xc.hvm_op.get_param({ domid, index: HVM_PARAM.STORE_PFN }), (e: unknown) => e instanceof HypercallError && e.errnoName === 'EINVAL', 'a PV domain has no HVM params');

    const list = await xc.sysctl.getdomaininfolist();
    assert.deepEqual(list.map((d) => d.domid).slice(0, 1), [0]);
    assert.ok(list.some((d) => d.domid === domid && d.handle === handle));
    assert.deepEqual((await findDomainByHandle(xc, handle)).map((d) => d.domid), [domid]);

    const { port } = await xc.event_channel_op.alloc_unbound({ dom: 0, remote_dom: domid });
    const st = await xc.event_channel_op.status({ dom: 0, port });
    assert.deepEqual([st.status, st.remote_dom], ['unbound', domid]);
    assert.deepEqual(await findLeakedPorts(xc, { dom: 0, remote_dom: domid, known: [] }), [port]);
    await xc.event_channel_op.close({ port });

    await xc.domctl.destroydomain({ domain: domid });
    await assert.rejects(xc.domctl.getdomaininfo({ domain: domid }), (e: unknown) => e instanceof HypercallError && e.errnoName === 'ESRCH');
    domid = -1;
  });

  it('readconsole reads Xen\'s own log incrementally', async () => {
    const first = await xc.sysctl.readconsole({ size: 1 << 16 });
    assert.match(first.text, /Xen version/);
    const again = await xc.sysctl.readconsole({ incremental: true, index: first.index, size: 4096 });
    assert.ok(again.count <= 4096);
  });
});

describe('the CLI in dom0 agrees with the hypervisor', () => {
  const cli = (...args: string[]) => JSON.parse(execFileSync(process.execPath, ['dist/cli.js', ...args, '--json'], { encoding: 'utf8', timeout: 120_000 }));

  it('xencall info --json', async () => {
    assert.ok(fs.existsSync('dist/cli.js'), 'dist/cli.js is missing: scripts/test-xen.sh builds it first');
    // The documented shape (docs/cli.md), on what a real Xen answers.
    const info = infoJson.parse(cli('info'));
    assert.equal(info.version, `${sysfs('version/major')}.${sysfs('version/minor')}${sysfs('version/extra')}`);
    assert.equal(info.capabilities.trimEnd(), sysfs('properties/capabilities'));
    assert.equal(info.physinfo.nr_cpus, vm.qemuSmp);
    assert.equal(info.buffers_never_fault, !vm.noHypercallDev);
    assert.equal(info.physinfo.total_mib, Number(info.physinfo.total_pages) / 256);
  });

  it('xencall domains --json', async () => {
    const xc = await open();
    try {
      const rows = domainsJson.parse(cli('domains'));
      const dom0 = rows.find((r) => r.domid === 0)!;
      const info = await xc.domctl.getdomaininfo({ domain: 0 });
      assert.equal(dom0.vcpus, vm.vcpus);
      assert.equal(dom0.vcpus, info.nr_online_vcpus);
      assert.equal(dom0.max_mem_mib, vm.dom0MemMb);
      assert.equal(dom0.mem_mib, Number(info.tot_pages) / 256);
      assert.equal(dom0.tot_pages, String(info.tot_pages), 'exact, as a decimal string');
      assert.ok(dom0.flags_names.includes('running') || dom0.flags_names.includes('blocked'), dom0.flags_names.join(','));
      assert.equal(dom0.shutdown_reason_name, null);
      assert.match(dom0.state, /^r/, 'dom0 is running');
      // Xen ORs SHUTDOWN_CODE_INVALID into the flags of a live domain; the mock models the same.
      assert.equal(info.flags >>> 16, 0xffff, `dom0 flags 0x${info.flags.toString(16)}`);
    } finally {
      xc.close();
    }
  });
});

describe('calls in flight on real Xen', () => {
  let admin: Xencall;
  let domid = -1;
  const XTAB = 0xf0000000;

  before(async () => {
    admin = await open();
    // A domain with no memory: every gfn is XTAB (arch_do_domctl, getpageframeinfo3), a value
    // that freed (zeroed) memory could never pass for.
    ({ domid } = await admin.domctl.createdomain({ handle: randomUUID() }));
  });
  after(async () => {
    if (domid > 0) await admin.domctl.destroydomain({ domain: domid }).catch(() => undefined);
    admin.close();
  });

  it("1,000 long-running calls at once, past koffi's 256 slots, all come back with what Xen wrote", async () => {
    const xc = await open();
    try {
      const rs = await Promise.all(Array.from({ length: 1000 }, (_, i) => xc.domctl.getpageframeinfo3({ domain: domid, gfns: [BigInt(i), BigInt(i + 1)] })));
      for (const r of rs) assert.deepEqual(r.types, Uint32Array.of(XTAB, XTAB));
    } finally {
      xc.close();
    }
  });

  it('close() with 600 in flight: each finishes with what Xen wrote or says XEN_ERR_CLOSED; nothing decodes freed memory, no fd stays open', async () => {
    const fds = fs.readdirSync('/proc/self/fd').length;
    const xc = await open();
    const all = Promise.allSettled(Array.from({ length: 600 }, (_, i) => xc.domctl.getpageframeinfo3({ domain: domid, gfns: [BigInt(i), 7n] })));
    xc.close();
    let done = 0;
    let closed = 0;
    for (const s of await all) {
      if (s.status === 'fulfilled') {
        assert.deepEqual(s.value.types, Uint32Array.of(XTAB, XTAB));
        done++;
      } else {
        assert.equal((s.reason as { code?: string }).code, 'XEN_ERR_CLOSED', String(s.reason));
        closed++;
      }
    }
    assert.equal(done + closed, 600);
    assert.ok(done > 0, 'the calls koffi had started finished');
    assert.equal(fs.readdirSync('/proc/self/fd').length, fds, 'the privcmd fds were closed after the last call');
  });
});
