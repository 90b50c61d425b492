// An AbortSignal that has already fired stops a call before anything is issued: the call
// rejects with XEN_ERR_ABORTED at once and the hypervisor sees nothing (a pausedomain does not
// pause). Every typed call, raw calls, a call the table would retry, createDomainAdopting, the
// live-migration loop and the test guest's boot and waits alike. (save, restore and migrate:
// test/saverestore-ops.test.ts.)

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, HVM_PARAM, XencallError, createDomainAdopting, liveMigrate, numbers, type Xencall } from '../src/index.js';
import { TYPED_OPS } from '../src/ops/index.js';
import { bootTestGuest, buildTestGuestImage, hvmContextBlob } from '../src/testing/index.js';
import { UUID_A, mockHandle } from './helpers.js';

const aborted = (e: unknown) => {
  assert.ok(e instanceof XencallError, String(e));
  assert.equal(e.code, ErrorCodes.ABORTED);
  return true;
};

function firedSignal(): AbortSignal {
  const c = new AbortController();
  c.abort(new Error('the caller gave up'));
  return c.signal;
}

describe('an already-aborted signal issues nothing', () => {
  it('typed calls: pausedomain rejects with XEN_ERR_ABORTED and the domain is not paused', async () => {
    const { hv, xc } = await mockHandle();
    const dom = hv.addDomain({ domid: 5, totPages: 16 });
    const calls = hv.calls;
    await assert.rejects(xc.domctl.pausedomain({ domain: 5 }, { signal: firedSignal() }), aborted);
    await assert.rejects(xc.sysctl.getdomaininfolist({}, { signal: firedSignal() }), aborted);
    // A long-running op (issued through hypercallAsync) too.
    await assert.rejects(xc.domctl.destroydomain({ domain: 5 }, { signal: firedSignal() }), aborted);
    assert.equal(dom.controllerPauseCount, 0);
    assert.equal(dom.dying, false);
    assert.equal(hv.calls, calls, 'no hypercall reached the mock');
    assert.equal([...xc.pool.liveBuffers()].length, 0, 'no buffer was left behind');
    xc.close();
  });

  it('every typed call rejects with XEN_ERR_ABORTED, and issues nothing, with arguments it would issue', async () => {
    const paths = typedCallPaths(TYPED_OPS);
    assert.deepEqual(paths.filter((p) => !(p in VALID_ARGS)), [], 'typed calls without arguments in VALID_ARGS');
    for (const path of paths) {
      const { hv, xc } = await mockHandle();
      hv.addDomain({ domid: 5, totPages: 64, maxVcpus: 2, onlineVcpus: 2, hvm: true, withMemory: true });
      const before = hv.calls;
      await assert.rejects(Promise.resolve().then(() => typedCall(xc, path)(VALID_ARGS[path], { signal: firedSignal() })), aborted, path);
      assert.equal(hv.calls, before, `${path}: a hypercall reached the mock`);
      assert.equal([...xc.pool.liveBuffers()].length, 0, `${path}: a buffer was left behind`);
      // The control: without the signal the same arguments pass validation and reach Xen.
      await Promise.resolve(typedCall(xc, path)(VALID_ARGS[path])).catch((e: unknown) => {
        assert.notEqual((e as XencallError).code, ErrorCodes.VALIDATION, `${path}: ${(e as Error).message}`);
      });
      assert.ok(hv.calls > before, `${path}: the control issued nothing`);
      xc.close();
    }
  });

  it('a call the table would re-issue after EFAULT is not issued once', async () => {
    const { hv, xc } = await mockHandle();
    const rule = hv.faults.inject({ op: 'sysctl.physinfo', direction: 'out', times: Infinity });
    await assert.rejects(xc.sysctl.physinfo({}, { signal: firedSignal() }), aborted);
    assert.equal(rule.fired, 0);
    assert.equal(hv.calls, 0);
    assert.equal(xc.stats()['sysctl.physinfo']?.attempts ?? 0, 0);
    xc.close();
  });

  it('createDomainAdopting rejects with XEN_ERR_ABORTED and creates nothing', async () => {
    const { hv, xc } = await mockHandle();
    await assert.rejects(createDomainAdopting(xc, { handle: UUID_A }, { signal: firedSignal() }), aborted);
    assert.equal(hv.calls, 0);
    assert.equal(hv.history.effects('domain.created').length, 0);
    xc.close();
  });

  it('the test guest: bootTestGuest creates no domain, a wait reads nothing', async () => {
    const { hv, xc } = await mockHandle();
    const image = (await buildTestGuestImage()).path;
    await assert.rejects(bootTestGuest(xc, { image, signal: firedSignal() }), aborted);
    assert.equal(hv.calls, 0);
    const guest = await bootTestGuest(xc, { image });
    const before = hv.calls;
    await assert.rejects(guest.waitForProgress(1, { signal: firedSignal() }), aborted);
    assert.equal(hv.calls, before);
    await guest.destroy();
    xc.close();
  });

  it('raw calls reject with XEN_ERR_ABORTED without reaching the backend', async () => {
    const { hv, xc } = await mockHandle();
    const calls = hv.calls;
    await assert.rejects(xc.hypercall(numbers.HYPERCALL.xen_version, [0], { signal: firedSignal() }), aborted);
    assert.equal(hv.calls, calls);
    xc.close();
  });

  it('liveMigrate rejects with XEN_ERR_ABORTED before enabling log-dirty mode', async () => {
    const { hv, xc } = await mockHandle();
    const dom = hv.addDomain({ domid: 7, totPages: 64, withMemory: true });
    let sent = 0;
    await assert.rejects(
      liveMigrate(xc, { domain: 7, pages: 64, sendPages: (g) => void (sent += g.length), signal: firedSignal() }),
      aborted,
    );
    assert.equal(dom.logDirty.enabled, false);
    assert.equal(sent, 0);
    assert.equal(hv.history.calls().length, 0);
    xc.close();
  });

  it('the cause is the signal\'s reason', async () => {
    const { xc } = await mockHandle();
    const c = new AbortController();
    const reason = new Error('shutting down');
    c.abort(reason);
    await assert.rejects(xc.xen_version.version(undefined, { signal: c.signal }), (e: unknown) => aborted(e) && (e as Error).cause === reason);
    xc.close();
  });
});

/** Arguments each typed call accepts, for domain 5 of the tests' world (a 64-page HVM guest). */
const VALID_ARGS: Record<string, unknown> = {
  'domctl.getdomaininfo': { domain: 5 },
  'domctl.createdomain': { handle: UUID_A },
  'domctl.destroydomain': { domain: 5 },
  'domctl.pausedomain': { domain: 5 },
  'domctl.unpausedomain': { domain: 5 },
  'domctl.setdomainhandle': { domain: 5, handle: UUID_A },
  'domctl.max_mem': { domain: 5, max_memkb: 1024 },
  'domctl.max_vcpus': { domain: 5, max: 2 },
  'domctl.getpageframeinfo3': { domain: 5, gfns: [0, 1] },
  'domctl.getvcpuinfo': { domain: 5, vcpu: 0 },
  'domctl.setvcpuaffinity': { domain: 5, vcpu: 0, hard: [0], soft: [0] },
  'domctl.getvcpuaffinity': { domain: 5, vcpu: 0 },
  'domctl.settimeoffset': { domain: 5, time_offset_seconds: 60 },
  'domctl.gethvmcontext': { domain: 5 },
  'domctl.sethvmcontext': { domain: 5, context: hvmContextBlob(2, 1) },
  'domctl.getvcpucontext': { domain: 5, vcpu: 0 },
  'domctl.shadow_op.off': { domain: 5 },
  'domctl.shadow_op.enable_logdirty': { domain: 5 },
  'domctl.shadow_op.clean': { domain: 5, pages: 64n },
  'domctl.shadow_op.peek': { domain: 5, pages: 64n },
  'domctl.shadow_op.get_allocation': { domain: 5 },
  'domctl.shadow_op.set_allocation': { domain: 5, mb: 4 },
  'sysctl.physinfo': {},
  'sysctl.sched_id': {},
  'sysctl.getdomaininfolist': {},
  'sysctl.readconsole': {},
  'sysctl.getcpuinfo': {},
  'sysctl.cputopoinfo': {},
  'sysctl.numainfo': {},
  'xen_version.version': {},
  'xen_version.extraversion': {},
  'xen_version.compile_info': {},
  'xen_version.capabilities': {},
  'xen_version.changeset': {},
  'xen_version.platform_parameters': {},
  'xen_version.get_features': { submap_idx: 0 },
  'xen_version.pagesize': {},
  'memory_op.populate_physmap': { domid: 5, gfns: [100] },
  'memory_op.maximum_ram_page': {},
  'memory_op.current_reservation': { domid: 5 },
  'memory_op.maximum_reservation': { domid: 5 },
  'memory_op.maximum_gpfn': { domid: 5 },
  'event_channel_op.alloc_unbound': { dom: 0, remote_dom: 5 },
  'event_channel_op.close': { port: 1 },
  'event_channel_op.send': { port: 1 },
  'event_channel_op.status': { dom: 0, port: 1 },
  'hvm_op.get_param': { domid: 5, index: HVM_PARAM.STORE_EVTCHN },
  'hvm_op.set_param': { domid: 5, index: HVM_PARAM.STORE_EVTCHN, value: 3 },
};

/** Every typed call's path below the handle, e.g. "domctl.shadow_op.clean". */
function typedCallPaths(node: object, prefix = ''): string[] {
  return Object.entries(node).flatMap(([k, v]) => {
    const p = prefix ? `${prefix}.${k}` : k;
    return 'run' in v && 'row' in v ? [p] : typedCallPaths(v as object, p);
  });
}

function typedCall(xc: Xencall, path: string): (args: unknown, options?: { signal?: AbortSignal }) => Promise<unknown> {
  let t: unknown = xc;
  for (const k of path.split('.')) t = (t as Record<string, unknown>)[k];
  return t as (args: unknown, options?: { signal?: AbortSignal }) => Promise<unknown>;
}
