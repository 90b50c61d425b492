// The CLI, run as a user runs it: the built executable, exit codes and --json output.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { TABLE } from '../src/index.js';
import { main } from '../src/cli/main.js';

function cli(args: string[]) {
  let out = '';
  let err = '';
  return main(args, { out: (s) => void (out += s), err: (s) => void (err += s) }).then((code) => ({ code, out, err }));
}

describe('xencall CLI', () => {
  it('table --json prints every row with the documented fields', async () => {
    const r = await cli(['table', '--json']);
    assert.equal(r.code, 0);
    const rows = JSON.parse(r.out) as Record<string, unknown>[];
    assert.equal(rows.length, TABLE.length);
    for (const row of rows) {
      for (const f of ['name', 'hypercall', 'subop', 'verdict', 'condition', 'reason', 'source', 'recovery']) assert.ok(f in row, `${String(row.name)} lacks ${f}`);
    }
    const rc = rows.find((x) => x.name === 'sysctl.readconsole')!;
    assert.equal(rc.verdict, 'conditional');
    assert.equal(rc.condition, 'unsafe when clear != 0');
  });

  it('table prints text with a summary line; --markdown a document', async () => {
    const t = await cli(['table']);
    assert.match(t.out, /domctl\.createdomain\s+36\/1\s+unsafe/);
    assert.match(t.out, /rows: \d+ safe, \d+ unsafe, \d+ conditional/);
    const m = await cli(['table', '--markdown']);
    assert.match(m.out, /^<!-- Generated/);
  });

  it('info, domains and call work against the mock backend, with --json', async () => {
    const info = await cli(['info', '--backend', 'mock', '--json']);
    assert.equal(info.code, 0);
    assert.equal(JSON.parse(info.out).version, '4.17.7');
    const doms = await cli(['domains', '--backend', 'mock', '--json']);
    assert.deepEqual(JSON.parse(doms.out).map((d: { domid: number }) => d.domid), [0, 1]);
    const text = await cli(['domains', '--backend', 'mock']);
    assert.match(text.out, /^\s+ID\s+Mem/);
    const call = await cli(['call', 'xen_version', '0', '--backend', 'mock', '--json']);
    assert.equal(JSON.parse(call.out).result, String(0x40011));
  });

  it('fails with exit 1 and a typed error for a failing hypercall, 2 for bad usage', async () => {
    const bad = await cli(['call', 'xen_version', '99', '--backend', 'mock', '--json']);
    assert.equal(bad.code, 1);
    assert.equal(JSON.parse(bad.out).error.code, 'XEN_ERR_HYPERCALL');
    assert.equal((await cli(['call', 'xen_version', 'zz', '--backend', 'mock'])).code, 2);
    assert.equal((await cli(['nosuch'])).code, 2);
    assert.equal((await cli(['info', '--backend', 'kvm'])).code, 2);
    assert.equal((await cli([])).code, 2);
  });

  it('demo runs the fault scenario and reports retries and refusals', async () => {
    const r = await cli(['demo', '--json']);
    assert.equal(r.code, 0);
    const d = JSON.parse(r.out);
    assert.ok(d.retries >= 2 && d.refused >= 3, `retries ${d.retries}, refused ${d.refused}`);
    assert.ok(d.steps.some((s: { outcome: string; step: string }) => s.outcome === 'refused' && s.step.startsWith('createdomain')));
  });

  it('demo survives heavy seeded faults: every step ends in a result, a recovery or a typed give-up', async () => {
    for (let seed = 1; seed <= 5; seed++) {
      const r = await cli(['demo', '--json', '--seed', String(seed), '--fault-rate', '0.02']);
      assert.equal(r.code, 0, `seed ${seed}: ${r.err}`);
      const d = JSON.parse(r.out);
      assert.ok(d.injected_faults > 20, `seed ${seed}: only ${d.injected_faults} faults`);
      for (const s of d.steps) assert.match(s.outcome, /^(ok|recovered|refused|exhausted)$/);
    }
  });

  it('the built executable runs and survives a closed pipe', () => {
    const r = spawnSync('sh', ['-c', 'node dist/cli.js table --json | head -c 10'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, '[\n  {\n    ');
  });
});
