// The mock's sysctl: xen/common/sysctl.c do_sysctl.

import { decode, encode } from '../../layout.js';
import { SYSCTL, XEN_SYSCTL_INTERFACE_VERSION } from '../../hypercalls/numbers.js';
import {
  SYSCTL_PAYLOAD_OFFSET,
  xen_domctl_getdomaininfo,
  xen_sysctl,
  xen_sysctl_cputopoinfo,
  xen_sysctl_getcpuinfo,
  xen_sysctl_getdomaininfolist,
  xen_sysctl_numainfo,
  xen_sysctl_physinfo,
  xen_sysctl_readconsole,
} from '../../hypercalls/structs.js';
import type { MockHypervisor } from '../hypervisor.js';
import { E, OK, nameOf, dv, type Begin } from './common.js';
import { domainInfo } from './domctl.js';

export function sysctl(hv: MockHypervisor, args: readonly bigint[], begin: Begin): bigint {
  const uSysctl = args[0]!;
  let name = 'sysctl';
  const peek = hv.peekGuest(uSysctl, 4);
  if (peek) name = `sysctl.${nameOf(SYSCTL, dv(peek).getUint32(0, true)) ?? dv(peek).getUint32(0, true)}`;
  begin(name);

  const opBytes = hv.copyFromGuest(name, uSysctl, xen_sysctl.size, 'arg0 (struct xen_sysctl)');
  if (!opBytes) return E('EFAULT');
  const v = dv(opBytes);
  const op = decode(xen_sysctl, v);
  if (op.interface_version !== XEN_SYSCTL_INTERFACE_VERSION) return E('EACCES');
  const P = SYSCTL_PAYLOAD_OFFSET;
  let ret = OK;
  let copyback = true;

  switch (op.cmd) {
    case SYSCTL.readconsole: {
      // drivers/char/console.c read_console_ring
      const rc = decode(xen_sysctl_readconsole, v, P);
      const con = hv.console;
      let c = con.cons;
      const p = con.prod;
      if (rc.incremental) {
        const inRange = c <= p ? c < rc.index && rc.index <= p : c < rc.index || rc.index <= p;
        if (inRange) c = rc.index;
      }
      let sofar = 0;
      while (c !== p && sofar < rc.count) {
        const idx = c & (con.size - 1);
        let len = (p - c) >>> 0;
        if (idx + len > con.size) len = con.size - idx;
        if (sofar + len > rc.count) len = rc.count - sofar;
        if (!hv.copyToGuest(name, rc.buffer + BigInt(sofar), con.ring.slice(idx, idx + len), `buffer[${sofar}..${sofar + len})`)) {
          return E('EFAULT'); // before any clear
        }
        sofar += len;
        c = (c + len) >>> 0;
      }
      if (rc.clear) {
        con.cons = ((p - c) >>> 0) > con.size ? (p - con.size) >>> 0 : c;
        hv.effect(name, 'console.cleared', { cons: con.cons });
      }
      encode(xen_sysctl_readconsole, v, P, { count: sofar, index: c });
      break;
    }
    case SYSCTL.physinfo: {
      encode(xen_sysctl_physinfo, v, P, {
        threads_per_core: 1,
        cores_per_socket: hv.nrCpus,
        nr_cpus: hv.nrCpus,
        max_cpu_id: hv.nrCpus - 1,
        nr_nodes: 1,
        max_node_id: 0,
        cpu_khz: 2_000_000,
        capabilities: hv.capabilities,
        total_pages: BigInt(hv.totalPages),
        free_pages: BigInt(hv.totalPages - [...hv.domains.values()].reduce((s, d) => s + d.totPages, 0)),
        scrub_pages: 0n,
        outstanding_pages: 0n,
        max_mfn: hv.maxRamPage - 1n,
      });
      break;
    }
    case SYSCTL.getdomaininfolist: {
      const gl = decode(xen_sysctl_getdomaininfolist, v, P);
      let num = 0;
      for (const d of hv.sortedDomains()) {
        if (d.domid < gl.first_domain) continue;
        if (num === gl.max_domains) break;
        const rec = new Uint8Array(xen_domctl_getdomaininfo.size);
        encode(xen_domctl_getdomaininfo, dv(rec), 0, domainInfo(hv, d));
        if (!hv.copyToGuest(name, gl.buffer + BigInt(num * rec.length), rec, `buffer[${num}]`)) {
          ret = E('EFAULT');
          break;
        }
        num++;
      }
      if (ret !== OK) return ret;
      encode(xen_sysctl_getdomaininfolist, v, P, { num_domains: num });
      break;
    }
    case SYSCTL.sched_id:
      // op->u.sched_id.sched_id = sched_id(): the default cpupool's scheduler.
      v.setUint32(P, hv.host.schedulerId, true);
      break;
    case SYSCTL.getcpuinfo:
    case SYSCTL.numainfo:
    case SYSCTL.cputopoinfo: {
      const r = cpuSysctl(hv, name, op.cmd, v, uSysctl);
      if (r === 'goto out') return E('EFAULT'); // getcpuinfo's `goto out`: ret != 0, no copy-back
      ret = r;
      break;
    }
    default:
      copyback = false;
      return hv.unmodelled(name, `sysctl cmd ${op.cmd}`);
  }
  if (copyback && ret === OK && !hv.copyToGuest(name, uSysctl, opBytes, 'arg0 (struct xen_sysctl)')) ret = E('EFAULT');
  return ret;
}

/**
 * do_sysctl's getcpuinfo, numainfo and cputopoinfo. Returns ret (the final copy-back follows
 * when it is 0), or 'goto out' for getcpuinfo's fault exit, which skips the copy-back.
 */
function cpuSysctl(hv: MockHypervisor, name: string, cmd: number, v: DataView, uSysctl: bigint): bigint | 'goto out' {
  const P = SYSCTL_PAYLOAD_OFFSET;
  const u32le = (n: number) => {
    const b = new Uint8Array(4);
    dv(b).setUint32(0, n, true);
    return b;
  };
  switch (cmd) {
    case SYSCTL.getcpuinfo: {
      const gi = decode(xen_sysctl_getcpuinfo, v, P);
      const nr = Math.min(gi.max_cpus, hv.nrCpus);
      let i = 0;
      for (; i < nr; i++) {
        const rec = new Uint8Array(8);
        dv(rec).setBigUint64(0, hv.host.cpuIdleTime[i] ?? 0n, true);
        if (!hv.copyToGuest(name, gi.info + BigInt(i * 8), rec, `info[${i}]`)) return 'goto out';
      }
      encode(xen_sysctl_getcpuinfo, v, P, { nr_cpus: i });
      return OK;
    }
    case SYSCTL.cputopoinfo: {
      const ti = decode(xen_sysctl_cputopoinfo, v, P);
      let numCpus = hv.nrCpus; // cpumask_last(&cpu_present_map) + 1
      let i: number;
      if (ti.cputopo !== 0n) {
        if (numCpus > ti.num_cpus) numCpus = ti.num_cpus;
        for (i = 0; i < numCpus; i++) {
          // One socket, one node, a core per cpu (physinfo: 1 thread per core).
          const rec = new Uint8Array(12);
          dv(rec).setUint32(0, i, true);
          dv(rec).setUint32(4, 0, true);
          dv(rec).setUint32(8, 0, true);
          if (!hv.copyToGuest(name, ti.cputopo + BigInt(i * 12), rec, `cputopo[${i}]`)) return E('EFAULT');
        }
      } else {
        i = numCpus;
      }
      if (ti.num_cpus !== i) {
        encode(xen_sysctl_cputopoinfo, v, P, { num_cpus: i });
        // __copy_field_to_guest(u_sysctl, op, u.cputopoinfo.num_cpus)
        if (!hv.copyToGuest(name, uSysctl + BigInt(P), u32le(i), 'arg0 u.cputopoinfo.num_cpus')) return E('EFAULT');
      }
      return OK;
    }
    case SYSCTL.numainfo: {
      const ni = decode(xen_sysctl_numainfo, v, P);
      let numNodes = 1; // last_node(node_online_map) + 1
      let i: number;
      if (ni.meminfo !== 0n || ni.distance !== 0n) {
        if (numNodes > ni.num_nodes) numNodes = ni.num_nodes;
        const used = [...hv.domains.values()].reduce((s, d) => s + d.totPages, 0);
        for (i = 0; i < numNodes; i++) {
          if (ni.meminfo !== 0n) {
            const rec = new Uint8Array(16);
            dv(rec).setBigUint64(0, BigInt(hv.totalPages) << 12n, true);
            dv(rec).setBigUint64(8, BigInt(Math.max(0, hv.totalPages - used)) << 12n, true);
            if (!hv.copyToGuest(name, ni.meminfo + BigInt(i * 16), rec, `meminfo[${i}]`)) return E('EFAULT');
          }
          if (ni.distance !== 0n) {
            const row = new Uint8Array(numNodes * 4);
            for (let j = 0; j < numNodes; j++) dv(row).setUint32(j * 4, i === j ? 10 : 20, true);
            if (!hv.copyToGuest(name, ni.distance + BigInt(i * numNodes * 4), row, `distance[${i * numNodes}..${(i + 1) * numNodes})`)) return E('EFAULT');
          }
        }
      } else {
        i = numNodes;
      }
      if (ni.num_nodes !== i) {
        encode(xen_sysctl_numainfo, v, P, { num_nodes: i });
        if (!hv.copyToGuest(name, uSysctl + BigInt(P), u32le(i), 'arg0 u.numainfo.num_nodes')) return E('EFAULT');
      }
      return OK;
    }
    default:
      throw new Error(`cpuSysctl: cmd ${cmd}`);
  }
}
