// Every command's --json output, against the mock backend, parsed with the schema docs/cli.md
// shows (src/cli/json-schemas.ts): strict objects, so an extra field (struct padding) fails too.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { flagNames } from '../src/cli/commands.js';
import { COMMAND_JSON, errorJson, type DomainJson, type InfoJson } from '../src/cli/json-schemas.js';
import { main } from '../src/cli/main.js';
import { COMMANDS, EXIT, type CommandName } from '../src/cli/spec.js';
import { numbers } from '../src/index.js';
import { MockHypervisor } from '../src/testing/index.js';

async function cli(args: string[]) {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

/** Runs `args --json` and parses its stdout with `schema`; a mismatch names the path. */
async function jsonOf<T>(schema: z.ZodType<T>, args: string[], exit: number = EXIT.ok): Promise<T> {
  const r = await cli([...args, '--json']);
  assert.equal(r.code, exit, `${args.join(' ')}: ${r.err}`);
  const parsed = schema.safeParse(JSON.parse(r.out));
  assert.ok(parsed.success, `${args.join(' ')}: ${parsed.success ? '' : z.prettifyError(parsed.error)}`);
  return parsed.data;
}

describe('xencall --json: each command against its schema', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xencall-cli-json-'));
  const image = path.join(dir, 'guest.img');
  // Every command, with arguments that make it succeed on the mock.
  const runs: Record<CommandName, string[]> = {
    info: ['info', '--backend', 'mock'],
    domains: ['domains', '--backend', 'mock'],
    table: ['table'],
    doctor: ['doctor', '--backend', 'mock'],
    call: ['call', 'xen_version', '1', 'buf:16', '--backend', 'mock'],
    demo: ['demo'],
    save: ['save', '4', image, '--keep', '--backend', 'mock'],
    restore: ['restore', image, '--backend', 'mock'],
    migrate: ['migrate', '6', '--live', '--backend', 'mock'],
    saverestore: ['saverestore', '--backend', 'mock', '--pages', '3000'],
  };

  it('every command has a schema, and its output matches it (save before restore: it reads the image)', async () => {
    assert.deepEqual(Object.keys(runs).sort(), Object.keys(COMMANDS).sort());
    try {
      for (const c of Object.keys(COMMAND_JSON) as CommandName[]) await jsonOf(COMMAND_JSON[c] as z.ZodType, runs[c]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a schema can fail: struct padding, a 64-bit value as a number, a missing field', async () => {
    const info = await jsonOf(COMMAND_JSON.info, runs.info);
    const bad = (v: unknown) => assert.equal(COMMAND_JSON.info.safeParse(v).success, false, JSON.stringify(v).slice(0, 80));
    bad({ ...info, physinfo: { ...info.physinfo, pad: 0 } });
    bad({ ...info, physinfo: { ...info.physinfo, total_pages: Number(info.physinfo.total_pages) } });
    const { backend: _b, ...missing } = info;
    bad(missing);
  });

  it('info: exact pages as decimal strings beside MiB, capability flags by name beside the number, no padding', async () => {
    const info: InfoJson = await jsonOf(COMMAND_JSON.info, runs.info);
    const p = info.physinfo;
    assert.equal(p.total_mib, Number(p.total_pages) / 256);
    assert.equal(p.free_mib, Number(p.free_pages) / 256);
    // The mock's host: HVM, PV, HAP and both grant table versions (src/testing/hypervisor.ts).
    assert.deepEqual(p.capabilities_names, ['hvm', 'pv', 'hap', 'gnttab_v1', 'gnttab_v2']);
    assert.equal(p.capabilities, flagsOf(p.capabilities_names, numbers.XEN_SYSCTL_PHYSCAP));
    assert.ok(!('pad' in p));
    // Above 2^32, as a string: the value is exact however large it grows.
    assert.equal(p.max_mfn, String((await physinfoOfMock()).max_mfn));
  });

  it('domains: u64 fields as decimal strings, flags and the shutdown code decoded', async () => {
    const doms: DomainJson[] = await jsonOf(COMMAND_JSON.domains, runs.domains);
    const dom0 = doms.find((d) => d.domid === 0)!;
    assert.equal(dom0.mem_mib, Number(dom0.tot_pages) / 256);
    assert.equal(dom0.flags_names.join(','), 'running');
    assert.equal(dom0.flags >>> 16, 0xffff, "Xen's SHUTDOWN_CODE_INVALID fills the shutdown bits of a live domain");
    assert.equal(dom0.shutdown_reason, 255);
    assert.equal(dom0.shutdown_reason_name, null);
    assert.equal(dom0.state, 'r-----');
    assert.equal(typeof dom0.cpu_time, 'string');
  });

  it('flag names: every set bit named, by the header name or as bit<N>', () => {
    const { XEN_DOMINF } = numbers;
    assert.deepEqual(flagNames(XEN_DOMINF.paused | XEN_DOMINF.hvm_guest | (1 << 12), { hvm_guest: XEN_DOMINF.hvm_guest, paused: XEN_DOMINF.paused }, 16), ['hvm_guest', 'paused', 'bit12']);
    assert.deepEqual(flagNames(0x80000001, {}), ['bit0', 'bit31']);
    assert.deepEqual(flagNames(0, numbers.XEN_SYSCTL_PHYSCAP), []);
  });

  it('call: the registers and the result as decimal strings, the hypercall named', async () => {
    const r = await jsonOf(COMMAND_JSON.call, ['call', 'xen_version', '0', '--backend', 'mock']);
    assert.equal(r.op_name, 'xen_version');
    assert.deepEqual(r.args, ['0']);
    assert.equal(BigInt(r.result), 0x40011n);
    assert.equal(r.result_hex, '0x40011');
  });

  it('a failure prints the error schema on stdout: a hypercall error (exit 1) and a usage error (exit 2)', async () => {
    const h = await jsonOf(errorJson, ['call', 'xen_version', '99', '--backend', 'mock', '--allow-writes'], EXIT.failed);
    assert.equal(h.error.code, 'XEN_ERR_HYPERCALL');
    assert.equal(h.error.errnoName, 'ENOSYS');
    const u = await jsonOf(errorJson, ['save', 'x', 'f', '--backend', 'mock'], EXIT.usage);
    assert.equal(u.error.code, 'XEN_ERR_VALIDATION');
    assert.equal(u.error.field, 'domid');
  });
});

/** The bits `names` stand for in a header's constants. */
function flagsOf(names: readonly string[], bits: Readonly<Record<string, number>>): number {
  return names.reduce((f, n) => f | bits[n]!, 0);
}

async function physinfoOfMock() {
  const { open } = await import('../src/index.js');
  const xc = await open({ backend: new MockHypervisor().backend() });
  try {
    return await xc.sysctl.physinfo();
  } finally {
    xc.close();
  }
}
