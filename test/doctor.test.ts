// xencall doctor: findings and advice for the machines a toolstack meets.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diagnose, runDoctor, type DoctorEnv } from '../src/cli/doctor.js';
import { MockHypervisor } from '../src/testing/index.js';
import type { Backend } from '../src/index.js';

function env(over: Partial<DoctorEnv> & { files?: Record<string, string>; devices?: string[] }): DoctorEnv {
  const files = over.files ?? { '/sys/hypervisor/type': 'xen\n', '/proc/xen/capabilities': 'control_d\n', '/proc/sys/vm/compact_unevictable_allowed': '1\n' };
  const devices = new Set(over.devices ?? ['/dev/xen/privcmd', '/dev/xen/hypercall']);
  return {
    exists: (p) => devices.has(p),
    read: (p) => files[p] ?? null,
    kernelRelease: '6.1.0-28-amd64',
    uid: 0,
    openBackend: () => new MockHypervisor().backend(),
    ...over,
  };
}

const by = (f: ReturnType<typeof diagnose>, check: string) => f.find((x) => x.check === check)!;

describe('xencall doctor', () => {
  it('a healthy dom0 with /dev/xen/hypercall: buffers cannot fault, compaction is harmless', () => {
    const f = diagnose(env({}));
    assert.equal(by(f, 'xen').status, 'ok');
    assert.match(by(f, 'privcmd').detail, /\/dev\/xen\/privcmd/);
    assert.equal(by(f, 'hypercall-buffers').status, 'ok');
    assert.equal(by(f, 'compaction').status, 'ok');
    assert.equal(by(f, 'hypercall').status, 'ok');
    assert.equal(by(f, 'xen-version').status, 'ok');
    assert.match(by(f, 'xen-version').detail, /^Xen 4\.17:/);
    assert.ok(!f.some((x) => x.status === 'fail'));
  });

  it('another Xen: warns that typed calls are refused there and raw calls work', () => {
    const f = diagnose(env({ openBackend: () => new MockHypervisor({ version: { major: 4, minor: 19 } }).backend() }));
    assert.equal(by(f, 'hypercall').status, 'ok');
    const v = by(f, 'xen-version');
    assert.equal(v.status, 'warn');
    assert.match(v.detail, /^Xen 4\.19: typed calls are refused \(XEN_ERR_XEN_VERSION_UNSUPPORTED\), as the table is Xen 4\.17's; raw calls work$/);
    assert.match(v.advice!, /Xen 4\.19/);
  });

  it('no /dev/xen/hypercall and compaction of locked pages on: warns, with the two remedies', () => {
    const f = diagnose(env({ devices: ['/proc/xen/privcmd'], kernelRelease: '4.9.0-9-amd64' }));
    assert.match(by(f, 'privcmd').detail, /legacy/);
    assert.equal(by(f, 'hypercall-buffers').status, 'warn');
    assert.match(by(f, 'hypercall-buffers').advice!, /4\.18/);
    assert.equal(by(f, 'compaction').status, 'warn');
    assert.match(by(f, 'compaction').advice!, /compact_unevictable_allowed=0/);
  });

  it('compact_unevictable_allowed = 0 is reported as the remedy in place', () => {
    const f = diagnose(env({ devices: ['/dev/xen/privcmd'], files: { '/sys/hypervisor/type': 'xen', '/proc/xen/capabilities': 'control_d', '/proc/sys/vm/compact_unevictable_allowed': '0' } }));
    assert.equal(by(f, 'compaction').status, 'ok');
    assert.match(by(f, 'compaction').detail, /remedy/);
  });

  it('a restricted fd (EPERM) and a missing privcmd are failures with advice', () => {
    const restricted: Backend = Object.assign(Object.create(new MockHypervisor().backend()) as Backend, { hypercall: () => -1n, close: () => {} });
    const f = diagnose(env({ openBackend: () => restricted, uid: 1000 }));
    assert.equal(by(f, 'hypercall').status, 'fail');
    assert.match(by(f, 'hypercall').detail, /restricted/);
    assert.equal(by(f, 'privileges').status, 'warn');
    const none = diagnose(env({ devices: [], files: {}, openBackend: () => { throw new Error('no privcmd'); } }));
    assert.equal(by(none, 'xen').status, 'fail');
    assert.equal(by(none, 'privcmd').status, 'fail');
    assert.equal(by(none, 'hypercall').status, 'fail');
  });

  it('prints text or JSON and exits non-zero on a failure', async () => {
    let out = '';
    const io = { out: (s: string) => void (out += s), err: () => {} };
    const opts = { json: true, markdown: false, backend: 'mock', seed: 1, rate: 0 };
    assert.equal(await runDoctor(opts, io), 0);
    assert.ok(Array.isArray(JSON.parse(out).findings));
    out = '';
    assert.equal(await runDoctor({ ...opts, json: false }, io, env({ devices: [] })), 3, 'a failed check: this machine cannot issue hypercalls (exit 3)');
    assert.match(out, /FAIL\s+privcmd/);
  });

  it('off Xen: says there is no Xen, with no modprobe advice and no compaction knob', () => {
    // A KVM guest: /sys/hypervisor/type is absent (or not xen) and there is no /proc/xen.
    for (const files of [{}, { '/sys/hypervisor/type': 'kvm\n', '/proc/sys/vm/compact_unevictable_allowed': '1\n' }] as Record<string, string>[]) {
      const f = diagnose(env({ files, devices: [], openBackend: () => { throw new Error('no privcmd'); } }));
      assert.equal(by(f, 'xen').status, 'fail');
      assert.match(by(f, 'xen').detail, /not running on Xen/);
      assert.match(by(f, 'xen').detail, /\/proc\/xen/);
      for (const x of f) {
        assert.doesNotMatch(`${x.detail} ${x.advice ?? ''}`, /modprobe|compact_unevictable_allowed=0|Upgrade to Linux/, `${x.check} gives advice that needs Xen`);
      }
      assert.equal(f.find((x) => x.check === 'compaction'), undefined, 'the compaction knob only matters for locked buffers on Xen');
    }
  });

  it('on Xen with /dev/xen/hypercall the compaction knob is not offered as advice', () => {
    const f = diagnose(env({}));
    assert.equal(by(f, 'compaction').advice, undefined);
    assert.doesNotMatch(by(f, 'compaction').detail, /can fault/);
  });

  it('on Xen without privcmd it still says how to load it', () => {
    const f = diagnose(env({ devices: [], files: { '/sys/hypervisor/type': 'xen\n' } }));
    assert.match(by(f, 'privcmd').advice!, /modprobe xen-privcmd/);
  });
});
