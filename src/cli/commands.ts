// `xencall info`, `xencall domains`: thin shells over the typed API (`xencall call` is in raw-call.ts).

import { open, type Xencall } from '../xencall.js';
import { MockHypervisor } from '../testing/hypervisor.js';
import type { CliIO } from './main.js';
import type { CliOptions } from './table.js';

/** Opens the backend the options name; the mock gets a small, fixed world. */
export async function openFor(opts: CliOptions): Promise<Xencall> {
  if (opts.backend === 'mock') {
    const hv = new MockHypervisor();
    hv.addDomain({ domid: 1, totPages: 131072, maxPages: 131072, maxVcpus: 2, onlineVcpus: 2, handle: Uint8Array.from({ length: 16 }, (_, i) => i + 1) });
    return open({ backend: hv.backend() });
  }
  return open();
}

const json = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? (x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x.toString()) : x), 2);

export async function runInfo(opts: CliOptions, io: CliIO): Promise<number> {
  const xc = await openFor(opts);
  try {
    const v = await xc.xen_version.version();
    const info = {
      version: `${v.major}.${v.minor}${await xc.xen_version.extraversion()}`,
      major: v.major,
      minor: v.minor,
      extraversion: await xc.xen_version.extraversion(),
      capabilities: await xc.xen_version.capabilities(),
      changeset: await xc.xen_version.changeset(),
      pagesize: await xc.xen_version.pagesize(),
      physinfo: await xc.sysctl.physinfo(),
      buffers_never_fault: xc.buffersNeverFault(),
      backend: xc.backend.kind,
    };
    if (opts.json) io.out(`${json(info)}\n`);
    else {
      const p = info.physinfo;
      io.out(
        [
          `xen_version      ${info.version}`,
          `capabilities     ${info.capabilities}`,
          `changeset        ${info.changeset}`,
          `nr_cpus          ${p.nr_cpus} (${p.nr_nodes} node${p.nr_nodes === 1 ? '' : 's'}, ${p.cores_per_socket} cores/socket, ${p.threads_per_core} threads/core)`,
          `cpu_mhz          ${Math.round(p.cpu_khz / 1000)}`,
          `total_memory     ${Number(p.total_pages) / 256} MiB`,
          `free_memory      ${Number(p.free_pages) / 256} MiB`,
          `buffers          ${info.buffers_never_fault ? '/dev/xen/hypercall (cannot fault)' : 'locked memory (EFAULT possible; retried where safe)'}`,
          '',
        ].join('\n'),
      );
    }
    return 0;
  } finally {
    xc.close();
  }
}

export async function runDomains(opts: CliOptions, io: CliIO): Promise<number> {
  const xc = await openFor(opts);
  try {
    const doms = [];
    // getdomaininfolist pages through every domain, first_domain moving past the last seen.
    for (let first = 0; ; ) {
      const batch = await xc.sysctl.getdomaininfolist({ first_domain: first, max_domains: 256 });
      doms.push(...batch);
      if (batch.length < 256) break;
      first = batch[batch.length - 1]!.domid + 1;
    }
    const rows = doms.map((d) => ({
      domid: d.domid,
      state: stateFlags(d),
      mem_mib: Number(d.tot_pages) / 256,
      max_mem_mib: Number(d.max_pages) / 256,
      vcpus: d.nr_online_vcpus,
      max_vcpu_id: d.max_vcpu_id,
      cpu_time_s: Number(d.cpu_time) / 1e9,
      handle: d.handle,
      flags: d.flags,
    }));
    if (opts.json) io.out(`${json(rows)}\n`);
    else {
      io.out(`${'ID'.padStart(5)}  ${'Mem'.padStart(7)}  ${'MaxMem'.padStart(7)}  VCPUs  State   ${'Time(s)'.padStart(9)}  Handle\n`);
      for (const r of rows) {
        io.out(
          `${String(r.domid).padStart(5)}  ${String(r.mem_mib).padStart(7)}  ${String(r.max_mem_mib).padStart(7)}  ${String(r.vcpus).padStart(5)}  ${r.state}  ${r.cpu_time_s.toFixed(1).padStart(9)}  ${r.handle}\n`,
        );
      }
    }
    return 0;
  } finally {
    xc.close();
  }
}

/** xl's six state letters: running, blocked, paused, shutdown, crashed, dying. */
function stateFlags(d: { running: boolean; blocked: boolean; paused: boolean; shutdown: boolean; shutdown_reason: number; dying: boolean }): string {
  return [
    d.running ? 'r' : '-',
    d.blocked ? 'b' : '-',
    d.paused ? 'p' : '-',
    d.shutdown && d.shutdown_reason !== 3 ? 's' : '-',
    d.shutdown && d.shutdown_reason === 3 ? 'c' : '-',
    d.dying ? 'd' : '-',
  ].join('');
}
