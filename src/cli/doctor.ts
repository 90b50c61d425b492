// `xencall doctor`: what this machine offers a hypercall caller, and what to do about it. Each
// finding has a status and advice. The checks read files through an injectable environment so
// tests can present any machine.

import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import type { Backend } from '../backend.js';
import { XencallError } from '../errors.js';
import { HYPERCALL, XENVER } from '../hypercalls/numbers.js';
import { XEN_SUPPORTED_VERSION as XEN } from '../hypercalls/row.js';
import { errnoNameOf } from '../errors.js';
import type { DoctorJson } from './json-schemas.js';
import type { CliIO } from './main.js';
import { EXIT } from './spec.js';
import type { CliOptions } from './table.js';

export type Status = 'ok' | 'warn' | 'fail' | 'info';

export interface Finding {
  check: string;
  status: Status;
  detail: string;
  advice?: string;
}

export interface DoctorEnv {
  exists(path: string): boolean;
  read(path: string): string | null;
  kernelRelease: string;
  uid: number | null;
  /** Opens the backend under test; throws a XencallError when it cannot. */
  openBackend(): Backend;
}

export const defaultDoctorEnv = (open: () => Backend): DoctorEnv => ({
  exists: (p) => existsSync(p),
  read: (p) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return null;
    }
  },
  kernelRelease: release(),
  uid: typeof process.getuid === 'function' ? process.getuid() : null,
  openBackend: open,
});

/** Linux 4.18 added /dev/xen/hypercall (privcmd-buf). */
function kernelAtLeast(rel: string, major: number, minor: number): boolean | null {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  if (!m) return null;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}

export function diagnose(env: DoctorEnv): Finding[] {
  const f: Finding[] = [];
  const hvType = env.read('/sys/hypervisor/type')?.trim();
  const caps = env.read('/proc/xen/capabilities')?.trim();
  // Xen announces itself in sysfs (the xen-sysfs driver) and the kernel's Xen support makes
  // /proc/xen; with neither, nothing below can be fixed by loading a module.
  const onXen = hvType === 'xen' || env.exists('/proc/xen');
  if (!onXen) {
    f.push({
      check: 'xen',
      status: 'fail',
      detail: `not running on Xen: ${hvType ? `/sys/hypervisor/type says "${hvType}"` : 'no /sys/hypervisor/type'} and no /proc/xen`,
      advice: 'xencall issues hypercalls from a Xen dom0; on another machine use --backend mock to try it without Xen.',
    });
  } else if (hvType !== 'xen') {
    f.push({ check: 'xen', status: 'warn', detail: '/proc/xen exists but /sys/hypervisor/type does not say xen', advice: 'Check that this kernel runs on Xen (CONFIG_XEN_SYS_HYPERVISOR gives /sys/hypervisor/type).' });
  } else {
    f.push({
      check: 'xen',
      status: caps?.includes('control_d') ? 'ok' : 'warn',
      detail: caps?.includes('control_d') ? 'running in a Xen control domain (dom0)' : 'running on Xen, but /proc/xen/capabilities does not say control_d',
      advice: caps?.includes('control_d') ? undefined : 'Mount xenfs on /proc/xen; toolstack hypercalls need dom0 (or a domain Xen grants them).',
    });
  }

  const devPriv = env.exists('/dev/xen/privcmd');
  const procPriv = env.exists('/proc/xen/privcmd');
  f.push({
    check: 'privcmd',
    status: devPriv || procPriv ? 'ok' : 'fail',
    detail: devPriv ? '/dev/xen/privcmd (the one xencall opens)' : procPriv ? '/proc/xen/privcmd (legacy node; /dev/xen/privcmd is missing)' : 'neither /dev/xen/privcmd nor /proc/xen/privcmd exists',
    advice: devPriv || !onXen ? undefined : 'Load the xen-privcmd module (modprobe xen-privcmd) and mount xenfs on /proc/xen.',
  });

  const bufDev = env.exists('/dev/xen/hypercall');
  const modern = kernelAtLeast(env.kernelRelease, 4, 18);
  // Where hypercall buffers come from, and so whether compaction matters, only means something
  // on Xen: elsewhere there is nothing to issue hypercalls to.
  if (onXen) {
    f.push({
      check: 'hypercall-buffers',
      status: bufDev ? 'ok' : 'warn',
      detail: bufDev
        ? '/dev/xen/hypercall exists: xencall\'s buffers are kernel pages that page migration never touches, so they cannot fault'
        : 'no /dev/xen/hypercall: buffers are locked user memory, which compaction and migration can make briefly inaccessible (transient EFAULT)',
      advice: bufDev ? undefined : modern ? 'The kernel is new enough: load xen-privcmd (it provides /dev/xen/hypercall).' : 'Upgrade to Linux 4.18 or later for /dev/xen/hypercall; meanwhile xencall retries EFAULT only where the table says it is safe.',
    });
  }
  f.push({ check: 'kernel', status: 'info', detail: `Linux ${env.kernelRelease}${onXen && modern === false ? ' (before 4.18: no /dev/xen/hypercall)' : ''}` });

  const compact = env.read('/proc/sys/vm/compact_unevictable_allowed')?.trim();
  if (!onXen) {
    // Nothing to say: the knob matters only for locked hypercall buffers.
  } else if (bufDev) {
    f.push({ check: 'compaction', status: 'ok', detail: 'not relevant: buffers come from /dev/xen/hypercall, which compaction never moves' });
  } else if (compact === undefined || compact === null) {
    f.push({ check: 'compaction', status: 'info', detail: 'vm.compact_unevictable_allowed is not available' });
  } else {
    const on = compact !== '0';
    f.push({
      check: 'compaction',
      status: on ? 'warn' : 'ok',
      detail: `vm.compact_unevictable_allowed = ${compact}: ${on ? 'compaction may move mlock()ed pages, so locked hypercall buffers can fault while it runs' : 'compaction leaves mlock()ed pages alone (the remedy of turning compaction of locked pages off)'}`,
      advice: on ? 'Without /dev/xen/hypercall, `sysctl vm.compact_unevictable_allowed=0` removes compaction as a source of EFAULT (page migration for other reasons remains).' : undefined,
    });
  }

  if (env.uid !== null && env.uid !== 0) {
    f.push({ check: 'privileges', status: 'warn', detail: `running as uid ${env.uid}`, advice: 'privcmd is normally root-only: run as root.' });
  }

  let backend: Backend | undefined;
  try {
    backend = env.openBackend();
    const r = backend.hypercall(HYPERCALL.xen_version, [BigInt(XENVER.version), 0n, 0n, 0n, 0n]);
    if (r >= 0n) {
      const v = `${Number(r) >>> 16}.${Number(r) & 0xffff}`;
      f.push({ check: 'hypercall', status: 'ok', detail: `xen_version answered ${v}; the fd is not restricted` });
      f.push(
        v === `${XEN.major}.${XEN.minor}`
          ? { check: 'xen-version', status: 'ok', detail: `Xen ${v}: the release xencall's table and typed calls follow` }
          : { check: 'xen-version', status: 'warn', detail: `Xen ${v}: typed calls are refused (XEN_ERR_XEN_VERSION_UNSUPPORTED), as the table is Xen ${XEN.major}.${XEN.minor}'s; raw calls work`, advice: `Use a xencall release for Xen ${v}, or raw calls only.` },
      );
      f.push({ check: 'buffers-never-fault', status: 'info', detail: String(backend.buffersNeverFault()) });
    } else {
      const name = errnoNameOf(Number(-r));
      f.push({
        check: 'hypercall',
        status: 'fail',
        detail: `a hypercall returned ${name}${name === 'EPERM' ? ': the fd is restricted (IOCTL_PRIVCMD_RESTRICT) or the caller lacks privilege' : ''}`,
        advice: name === 'EPERM' ? 'Use an unrestricted privcmd fd, as root, in dom0.' : 'Check that this domain may make hypercalls (dom0, XSM policy).',
      });
    }
  } catch (e) {
    f.push({ check: 'hypercall', status: 'fail', detail: e instanceof XencallError ? `${e.code}: ${e.message}` : String(e), advice: onXen ? 'See the privcmd finding above.' : 'See the xen finding above.' });
  } finally {
    backend?.close();
  }
  return f;
}

export async function runDoctor(opts: CliOptions, io: CliIO, env?: DoctorEnv): Promise<number> {
  let e = env;
  if (!e) {
    if (opts.backend === 'mock') {
      const { MockHypervisor } = await import('../testing/hypervisor.js');
      // The mock presents a dom0 with every device, so each check has something to say.
      const files: Record<string, string> = { '/sys/hypervisor/type': 'xen\n', '/proc/xen/capabilities': 'control_d\n', '/proc/sys/vm/compact_unevictable_allowed': '1\n' };
      const devices = new Set(['/dev/xen/privcmd', '/dev/xen/hypercall']);
      e = { ...defaultDoctorEnv(() => new MockHypervisor({ buffersNeverFault: true }).backend()), exists: (p) => devices.has(p), read: (p) => files[p] ?? null };
    } else {
      const { openPrivcmd } = await import('../backends/privcmd.js');
      e = defaultDoctorEnv(() => openPrivcmd());
    }
  }
  const findings = diagnose(e);
  const out: DoctorJson = { findings: findings.map((x) => ({ check: x.check, status: x.status, detail: x.detail, advice: x.advice ?? null })) };
  if (opts.json) io.out(`${JSON.stringify(out, null, 2)}\n`);
  else {
    const mark: Record<Status, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', info: 'info' };
    for (const x of findings) {
      io.out(`${mark[x.status]}  ${x.check.padEnd(19)} ${x.detail}\n`);
      if (x.advice) io.out(`      ${''.padEnd(19)} -> ${x.advice}\n`);
    }
  }
  // Every failing check means this machine cannot issue hypercalls as it is.
  return findings.some((x) => x.status === 'fail') ? EXIT.unavailable : EXIT.ok;
}
