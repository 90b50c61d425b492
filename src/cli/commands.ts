// `xencall info`, `xencall domains`: thin shells over the typed API (`xencall call` is in raw-call.ts).

import { XEN_DOMINF, XEN_SYSCTL_PHYSCAP } from '../hypercalls/numbers.js';
import { SHUTDOWN, XEN_X86_EMU, XEN_X86_MISC } from '../hypercalls/values.js';
import type { DomainInfo } from '../ops/domctl.js';
import { open, type Xencall } from '../xencall.js';
import { MockHypervisor } from '../testing/hypervisor.js';
import type { DomainJson, InfoJson } from './json-schemas.js';
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

/**
 * --json text. Xen's 64-bit integers must have been made decimal strings already (json-schemas.ts
 * has the rule): a bigint left in makes JSON.stringify throw rather than print a rounded number.
 */
export const jsonText = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;

/** The names of the set bits of `value` by a header's single-bit constants; others as "bit<N>". */
export function flagNames(value: number, bits: Readonly<Record<string, number>>, width = 32): string[] {
  const names: string[] = [];
  for (let i = 0; i < width; i++) {
    const bit = 2 ** i;
    if (Math.floor(value / bit) % 2 === 0) continue;
    names.push(Object.keys(bits).find((k) => bits[k] === bit) ?? `bit${i}`);
  }
  return names;
}

// XEN_DOMINF's field (not flags): the shutdown code in bits 16 and up.
const { shutdownmask: _mask, shutdownshift: SHUTDOWN_SHIFT, ...DOMINF_BITS } = XEN_DOMINF;
// XEN_X86_EMU_ALL is every bit at once, not a flag of its own.
const { ALL: _all, ...EMU_BITS } = XEN_X86_EMU;
const SHUTDOWN_NAMES = Object.fromEntries(Object.entries(SHUTDOWN).map(([k, v]) => [v, k])) as Record<number, string>;
const mibOf = (pages: bigint) => Number(pages) / 256;

export async function runInfo(opts: CliOptions, io: CliIO): Promise<number> {
  const xc = await openFor(opts);
  try {
    const v = await xc.xen_version.version();
    const extraversion = await xc.xen_version.extraversion();
    const p = await xc.sysctl.physinfo();
    const info: InfoJson = {
      version: `${v.major}.${v.minor}${extraversion}`,
      major: v.major,
      minor: v.minor,
      extraversion,
      capabilities: await xc.xen_version.capabilities(),
      changeset: await xc.xen_version.changeset(),
      pagesize: await xc.xen_version.pagesize(),
      // Field by field: physinfo's struct padding stays out.
      physinfo: {
        threads_per_core: p.threads_per_core,
        cores_per_socket: p.cores_per_socket,
        nr_cpus: p.nr_cpus,
        max_cpu_id: p.max_cpu_id,
        nr_nodes: p.nr_nodes,
        max_node_id: p.max_node_id,
        cpu_khz: p.cpu_khz,
        capabilities: p.capabilities,
        capabilities_names: flagNames(p.capabilities, XEN_SYSCTL_PHYSCAP),
        arch_capabilities: p.arch_capabilities,
        arch_capabilities_names: flagNames(p.arch_capabilities, {}),
        total_pages: String(p.total_pages),
        free_pages: String(p.free_pages),
        scrub_pages: String(p.scrub_pages),
        outstanding_pages: String(p.outstanding_pages),
        max_mfn: String(p.max_mfn),
        total_mib: mibOf(p.total_pages),
        free_mib: mibOf(p.free_pages),
        hw_cap: [...p.hw_cap],
      },
      buffers_never_fault: xc.buffersNeverFault(),
      backend: opts.backend === 'mock' ? 'mock' : 'privcmd',
    };
    if (opts.json) io.out(jsonText(info));
    else {
      const p = info.physinfo;
      io.out(
        [
          `xen_version      ${info.version}`,
          `capabilities     ${info.capabilities}`,
          `changeset        ${info.changeset}`,
          `nr_cpus          ${p.nr_cpus} (${p.nr_nodes} node${p.nr_nodes === 1 ? '' : 's'}, ${p.cores_per_socket} cores/socket, ${p.threads_per_core} threads/core)`,
          `cpu_mhz          ${Math.round(p.cpu_khz / 1000)}`,
          `total_memory     ${info.physinfo.total_mib} MiB (${p.total_pages} pages)`,
          `free_memory      ${info.physinfo.free_mib} MiB (${p.free_pages} pages)`,
          `xen_caps         ${info.physinfo.capabilities_names.join(' ')}`,
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
    const rows = doms.map(domainJson);
    if (opts.json) io.out(jsonText(rows));
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

function domainJson(d: DomainInfo): DomainJson {
  const shutdownReason = (d.flags >>> SHUTDOWN_SHIFT) & XEN_DOMINF.shutdownmask;
  return {
    domid: d.domid,
    handle: d.handle,
    state: stateFlags(d),
    flags: d.flags,
    flags_names: flagNames(d.flags, DOMINF_BITS, SHUTDOWN_SHIFT),
    shutdown_reason: shutdownReason,
    shutdown_reason_name: d.shutdown ? (SHUTDOWN_NAMES[shutdownReason] ?? `code${shutdownReason}`) : null,
    tot_pages: String(d.tot_pages),
    max_pages: String(d.max_pages),
    outstanding_pages: String(d.outstanding_pages),
    shr_pages: String(d.shr_pages),
    paged_pages: String(d.paged_pages),
    shared_info_frame: String(d.shared_info_frame),
    mem_mib: mibOf(d.tot_pages),
    max_mem_mib: mibOf(d.max_pages),
    vcpus: d.nr_online_vcpus,
    max_vcpu_id: d.max_vcpu_id,
    cpu_time: String(d.cpu_time),
    cpu_time_s: Number(d.cpu_time) / 1e9,
    ssidref: d.ssidref,
    cpupool: d.cpupool,
    gpaddr_bits: d.gpaddr_bits,
    arch_config: {
      emulation_flags: d.arch_config.emulation_flags,
      emulation_flags_names: flagNames(d.arch_config.emulation_flags, EMU_BITS),
      misc_flags: d.arch_config.misc_flags,
      misc_flags_names: flagNames(d.arch_config.misc_flags, XEN_X86_MISC),
    },
  };
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
