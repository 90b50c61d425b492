// The CLI, run as a user runs it: the built executable, exit codes and --json output.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { TABLE, decode, encode, numbers, structs } from '../src/index.js';
import { main } from '../src/cli/main.js';
import { COMMANDS, EXIT, OPTIONS, commandOptions, type CommandName, type OptionName } from '../src/cli/spec.js';

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
    // xen_version 99 has no table row: it needs --allow-writes, and then Xen's error comes back.
    const bad = await cli(['call', 'xen_version', '99', '--backend', 'mock', '--json', '--allow-writes']);
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

describe('xencall call: the raw CLI cannot hurt by accident', () => {
  const tmp = (name: string, bytes: Uint8Array) => {
    const p = path.join(os.tmpdir(), `xencall-cli-${process.pid}-${name}`);
    fs.writeFileSync(p, bytes);
    return p;
  };
  const domctlStruct = (cmd: number, fill: (v: DataView) => void = () => {}) => {
    const b = new Uint8Array(structs.xen_domctl.size);
    const v = new DataView(b.buffer);
    encode(structs.xen_domctl, v, 0, { cmd, interface_version: numbers.XEN_DOMCTL_INTERFACE_VERSION, domain: 0 });
    fill(v);
    return b;
  };

  it('refuses a call the table does not mark read-only without --allow-writes (sched_op_compat 2 0 is SCHEDOP_shutdown)', async () => {
    const r = await cli(['call', 'sched_op_compat', '2', '0', '--backend', 'mock']);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /--allow-writes/);
    assert.match(r.err, /sched_op_compat/);
    const forced = await cli(['call', 'sched_op_compat', '2', '0', '--backend', 'mock', '--allow-writes']);
    assert.notEqual(forced.code, 2, 'with the opt-in the call is issued (the mock does not model it)');
    const pause = await cli(['call', 'domctl', `buf:@${tmp('pause', domctlStruct(numbers.DOMCTL.pausedomain))}`, '--backend', 'mock']);
    assert.equal(pause.code, 2);
    assert.match(pause.err, /domctl\.pausedomain/);
  });

  it('issues read-only calls, a struct from a file among them, and prints the buffers Xen wrote', async () => {
    const r = await cli(['call', 'xen_version', '1', 'buf:16', '--backend', 'mock', '--json']);
    assert.equal(r.code, 0, r.err);
    const out = JSON.parse(r.out);
    assert.equal(out.result, '0');
    assert.equal(out.buffers[0].arg, 'A2');
    assert.equal(Buffer.from(out.buffers[0].hex, 'hex').toString('latin1').replace(/\0+$/, ''), '.7');
    const info = await cli(['call', 'domctl', `buf:@${tmp('info', domctlStruct(numbers.DOMCTL.getdomaininfo))}`, '--backend', 'mock', '--json']);
    assert.equal(info.code, 0, info.err);
    const back = Buffer.from(JSON.parse(info.out).buffers[0].hex, 'hex');
    const decoded = decode(structs.xen_domctl_getdomaininfo, new DataView(back.buffer, back.byteOffset + structs.DOMCTL_PAYLOAD_OFFSET), 0);
    assert.equal(decoded.max_vcpu_id, 1, "dom0's info came back");
    const text = await cli(['call', 'xen_version', '1', 'buf:16', '--backend', 'mock']);
    assert.match(text.out, /^0 \(0x0\)\nA2 buf:16: 2e37/);
  });

  it('pointer arguments only to buffers the CLI made: numbers that could be addresses, and struct handles elsewhere, are refused', async () => {
    for (const a of ['0x7f0000001000', String(2n ** 32n), '-1', '0xffff888000000000']) {
      // After --, as any argument that starts with a dash must be.
      const r = await cli(['call', '--backend', 'mock', '--allow-writes', 'xen_version', '1', '--', a]);
      assert.equal(r.code, 2, `${a}: ${r.err}`);
      assert.match(r.err, /buf:SIZE/);
    }
    // getdomaininfolist whose buffer handle points into no CLI buffer.
    const list = domctlStruct(0);
    const lv = new DataView(list.buffer);
    encode(structs.xen_sysctl, lv, 0, { cmd: numbers.SYSCTL.getdomaininfolist, interface_version: numbers.XEN_SYSCTL_INTERFACE_VERSION });
    encode(structs.xen_sysctl_getdomaininfolist, lv, structs.SYSCTL_PAYLOAD_OFFSET, { first_domain: 0, max_domains: 4, buffer: 0x7f00_1234_0000n });
    const r = await cli(['call', 'sysctl', `buf:@${tmp('list', list.slice(0, structs.xen_sysctl.size))}`, '--backend', 'mock', '--allow-writes']);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /buffer/);
    // Argument syntax errors are usage errors too.
    for (const bad of ['buf:0', 'buf:x', `buf:@${path.join(os.tmpdir(), 'xencall-no-such-file')}`, 'buf:99999999999']) {
      assert.equal((await cli(['call', 'xen_version', '1', bad, '--backend', 'mock'])).code, 2, bad);
    }
  });

  it('names resolve as own properties only: `call constructor` is a usage error, not a prototype lookup', async () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const r = await cli(['call', name, '--backend', 'mock']);
      assert.equal(r.code, 2, `${name}: ${r.err}`);
      assert.match(r.err, /not a hypercall/);
    }
  });

  it('--seed, --fault-rate and --pages take plain decimal numbers: empty, 1e300, hex and fractions are usage errors', async () => {
    for (const argv of [
      ['demo', '--seed', ''],
      ['demo', '--seed', '1e300'],
      ['demo', '--seed', '0x10'],
      ['demo', '--seed', '1.5'],
      ['demo', '--seed', String(2 ** 32)],
      ['demo', '--fault-rate', ''],
      ['demo', '--fault-rate', '0x1'],
      ['demo', '--fault-rate', '2'],
      ['saverestore', '--backend', 'mock', '--pages', '1e3'],
      ['saverestore', '--backend', 'mock', '--pages', ''],
    ]) {
      const r = await cli(argv);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.out}${r.err}`);
      assert.match(r.err, /^xencall/);
    }
  });

  it('a failing stdout (ENOSPC, EPIPE) ends with a clean message and a non-zero exit, never a stack trace', async () => {
    const r = spawnSync('sh', ['-c', 'node --import tsx src/cli/bin.ts table > /dev/full'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^xencall: cannot write output: ENOSPC/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    // In-process: an output function that fails is reported, not thrown.
    let err = '';
    const failing = () => {
      throw Object.assign(new Error('write EPIPE'), { code: 'EPIPE', syscall: 'write' });
    };
    const code = await main(['table', '--json'], { out: failing, err: (s) => void (err += s) });
    assert.equal(code, 141);
    assert.equal(err, '', 'a reader that closed the pipe on purpose gets no message');
  });
});

describe('xencall save, restore, migrate (--backend mock)', () => {
  it('save writes an image restore accepts; restore prints the new domid; migrate reports its figures', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xencall-cli-sr-'));
    try {
      const file = path.join(dir, 'g.img');
      const s = await cli(['save', '5', file, '--live', '--json', '--backend', 'mock']);
      assert.equal(s.code, 0, s.err);
      const saved = JSON.parse(s.out) as Record<string, unknown>;
      assert.equal(saved.domid, 5);
      assert.equal(saved.bytes, fs.statSync(file).size);
      assert.equal(saved.source, 'destroyed');
      assert.ok((saved.rounds as number) >= 2);
      const again = await cli(['save', '5', file, '--backend', 'mock']);
      assert.equal(again.code, 2);
      assert.match(again.err, /EEXIST/);

      const r = await cli(['restore', file, '--backend', 'mock']);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /^\d+\n$/);
      const rj = await cli(['restore', file, '--json', '--backend', 'mock']);
      assert.equal((JSON.parse(rj.out) as { pages: number }).pages > 4000, true);

      fs.writeFileSync(path.join(dir, 'short.img'), fs.readFileSync(file).subarray(0, 5000));
      const bad = await cli(['restore', path.join(dir, 'short.img'), '--json', '--backend', 'mock']);
      assert.equal(bad.code, 1);
      assert.equal((JSON.parse(bad.out) as { error: { code: string } }).error.code, 'XEN_ERR_IMAGE_INVALID');
      assert.match(bad.err, /truncated/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const m = await cli(['migrate', '7', '--live', '--json', '--backend', 'mock']);
    assert.equal(m.code, 0, m.err);
    const mig = JSON.parse(m.out) as Record<string, number | boolean>;
    assert.equal(mig.source, 7);
    assert.notEqual(mig.destination, 7);
    for (const k of ['rounds', 'pages_sent', 'downtime_ms', 'total_ms']) assert.equal(typeof mig[k], 'number', k);
    assert.ok((mig.downtime_ms as number) <= (mig.total_ms as number));
  });

  it('bad arguments are usage errors (exit 2)', async () => {
    for (const args of [['save'], ['save', '0', 'f'], ['save', 'x', 'f'], ['restore'], ['migrate'], ['migrate', '70000'], ['migrate', '3', 'extra']]) {
      const r = await cli([...args, '--backend', 'mock']);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    }
  });
});

describe('xencall --version, <command> --help, and options a command does not take', () => {
  const names = Object.keys(COMMANDS) as CommandName[];

  it("--version prints package.json's version, from the source and from the build", async () => {
    const { version } = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { version: string };
    const r = await cli(['--version']);
    assert.equal(r.code, 0);
    assert.equal(r.out, `${version}\n`);
    const built = spawnSync(process.execPath, ['dist/cli.js', '--version'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(built.status, 0, built.stderr);
    assert.equal(built.stdout, `${version}\n`);
  });

  it('<command> --help prints that command\'s usage and exactly the options it takes', async () => {
    for (const c of names) {
      for (const help of ['--help', '-h']) {
        const r = await cli([c, help]);
        assert.equal(r.code, 0, `${c} ${help}: ${r.err}`);
        assert.ok(r.out.startsWith(`usage: xencall ${c}${COMMANDS[c].args ? ` ${COMMANDS[c].args}` : ''} [options]\n`), `${c}: ${r.out.split('\n')[0]}`);
        const listed = [...r.out.matchAll(/^ {2}(?:-\w, )?--([\w-]+)/gm)].map((m) => m[1]);
        assert.deepEqual(listed.sort(), commandOptions(c).map((o) => o.name).sort(), c);
      }
    }
    const top = await cli(['--help']);
    assert.equal(top.code, 0);
    for (const c of names) assert.match(top.out, new RegExp(`^ {2}${c} `, 'm'));
  });

  it('an option a command does not take is a usage error naming it, for every command and option', async () => {
    for (const c of names) {
      const takes = new Set(commandOptions(c).map((o) => o.name));
      for (const o of Object.keys(OPTIONS) as OptionName[]) {
        if (takes.has(o)) continue;
        const argv = [c, ...(c === 'call' ? ['xen_version', '0'] : []), `--${o}`, ...(OPTIONS[o].type === 'string' ? ['1'] : [])];
        const r = await cli(argv);
        assert.equal(r.code, EXIT.usage, `${argv.join(' ')}: ${r.out}${r.err}`);
        assert.match(r.err, new RegExp(`^xencall ${c}: --${o}: xencall ${c} does not take it\nusage: xencall ${c}`), argv.join(' '));
        assert.equal(r.out, '', 'nothing ran');
      }
      const bogus = await cli([c, '--bogus']);
      assert.equal(bogus.code, EXIT.usage);
      assert.match(bogus.err, /--bogus: no such option/);
    }
  });

  it('too few or too many arguments are usage errors, as is an option missing its value', async () => {
    for (const c of names) {
      const { minArgs, maxArgs } = COMMANDS[c];
      for (const n of [minArgs - 1, maxArgs + 1].filter((k) => k >= 0)) {
        const r = await cli([c, ...Array.from({ length: n }, (_, i) => String(i + 1)), ...('backend' in COMMANDS[c].options ? ['--backend', 'mock'] : [])]);
        assert.equal(r.code, EXIT.usage, `${c} with ${n} arguments: ${r.err}`);
        assert.match(r.err, new RegExp(`xencall ${c} takes`));
      }
    }
    assert.equal((await cli(['info', '--backend'])).code, EXIT.usage);
    assert.equal((await cli(['table', '--json=yes'])).code, EXIT.usage);
    assert.equal((await cli(['--json'])).code, EXIT.usage, 'no command');
  });

  it('--json with a usage error prints the error as JSON too; the command may come after options', async () => {
    const r = await cli(['--json', 'domains', '--markdown']);
    assert.equal(r.code, EXIT.usage);
    assert.deepEqual(JSON.parse(r.out), { error: { code: 'XEN_ERR_VALIDATION', message: '--markdown: xencall domains does not take it', field: '--markdown' } });
    const ok = await cli(['--backend', 'mock', '--json', 'domains']);
    assert.equal(ok.code, EXIT.ok, ok.err);
  });
});

describe('xencall exit statuses, one per kind of outcome (README and docs/cli.md)', () => {
  it('0 success, 1 a hypercall error, 2 bad usage', async () => {
    assert.equal((await cli(['table', '--json'])).code, EXIT.ok);
    const failed = await cli(['call', 'xen_version', '99', '--backend', 'mock', '--allow-writes']);
    assert.equal(failed.code, EXIT.failed);
    assert.match(failed.err, /^xencall call: XEN_ERR_HYPERCALL: /);
    assert.equal((await cli(['info', '--backend', 'kvm'])).code, EXIT.usage);
    assert.equal((await cli(['nosuch'])).code, EXIT.usage);
  });

  it('3 where there is no Xen (no privcmd node, or koffi cannot load), as the built executable', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xencall-cli-noxen-'));
    try {
      // koffi unavailable: in a dom0 as on a machine without Xen, privcmd cannot be used.
      fs.writeFileSync(path.join(dir, 'hook.mjs'), "export async function resolve(s, c, next) { if (s === 'koffi') throw new Error('koffi is not installed here'); return next(s, c); }\n");
      fs.writeFileSync(path.join(dir, 'reg.mjs'), `import { register } from 'node:module'; register(${JSON.stringify(`file://${path.join(dir, 'hook.mjs')}`)});\n`);
      for (const c of ['info', 'domains']) {
        const r = spawnSync(process.execPath, ['--import', path.join(dir, 'reg.mjs'), 'dist/cli.js', c, '--json'], { encoding: 'utf8', timeout: 20_000 });
        assert.equal(r.status, EXIT.unavailable, `${c}: ${r.stderr}`);
        assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'XEN_ERR_BACKEND_UNAVAILABLE');
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('4 for a bug (an unexpected error), with its message and no stack trace', async () => {
    let err = '';
    const code = await main(['table', '--json'], {
      out: () => {
        throw new Error('boom');
      },
      err: (s) => void (err += s),
    });
    assert.equal(code, EXIT.internal);
    assert.equal(err, 'xencall table: internal error: boom\n');
  });
});

describe('xencall --help, --version and usage errors load no part of the library', () => {
  it('the built executable loads only its own module for them, and the commands module when one runs', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xencall-cli-lazy-'));
    try {
      // A load hook that lists every file module node loads.
      fs.writeFileSync(path.join(dir, 'hook.mjs'), "export async function load(url, c, next) { if (url.startsWith('file:')) process.stderr.write(`LOADED ${url}\\n`); return next(url, c); }\n");
      fs.writeFileSync(path.join(dir, 'reg.mjs'), `import { register } from 'node:module'; register(${JSON.stringify(`file://${path.join(dir, 'hook.mjs')}`)});\n`);
      const loaded = (...args: string[]) => {
        const r = spawnSync(process.execPath, ['--import', path.join(dir, 'reg.mjs'), 'dist/cli.js', ...args], { encoding: 'utf8', timeout: 20_000 });
        return [...r.stderr.matchAll(/^LOADED file:\/\/.*\/dist\/(.+)$/gm)].map((m) => m[1]!);
      };
      for (const args of [['--help'], ['--version'], ['info', '--help'], ['info', '--bogus'], ['nosuch']]) {
        const files = loaded(...args);
        assert.ok(files.includes('cli.js'), `${args.join(' ')}: the hook sees the executable`);
        assert.deepEqual(
          files.filter((f) => f.startsWith('command-modules') || f.startsWith('privcmd') || f.startsWith('hypervisor')),
          [],
          `${args.join(' ')} loaded ${files.join(', ')}`,
        );
        assert.ok(files.length <= 3, `${args.join(' ')} loaded ${files.join(', ')}: the executable and its two small shared chunks (the spec and the errors)`);
      }
      assert.ok(loaded('table', '--json').some((f) => f.startsWith('command-modules')), 'a command that runs loads the commands');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
