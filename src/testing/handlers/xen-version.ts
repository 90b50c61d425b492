// The mock's xen_version: xen/common/kernel.c do_xen_version.

import { decode, encode } from '../../layout.js';
import { XENVER } from '../../hypercalls/numbers.js';
import {
  xen_compile_info,
  xen_feature_info,
  xen_platform_parameters,
  XEN_VERSION_STRING_SIZES,
} from '../../hypercalls/structs.js';
import type { MockHypervisor } from '../hypervisor.js';
import { E, OK, nameOf, dv, type Begin } from './common.js';

export function xenVersion(hv: MockHypervisor, args: readonly bigint[], begin: Begin): bigint {
  const cmd = Number(BigInt.asUintN(32, args[0]!));
  const arg = args[1]!;
  const sub = nameOf(XENVER, cmd);
  const name = `xen_version.${sub ?? cmd}`;
  begin(name);
  const out = (bytes: Uint8Array, what: string) => (hv.copyToGuest(name, arg, bytes, what) ? OK : E('EFAULT'));
  const str = (s: string, size: number) => {
    const b = new Uint8Array(size);
    b.set(Buffer.from(s, 'latin1').subarray(0, size - 1));
    return b;
  };
  switch (cmd) {
    case XENVER.version:
      return BigInt((hv.version.major << 16) | hv.version.minor);
    case XENVER.extraversion:
      return out(str(hv.version.extraversion, XEN_VERSION_STRING_SIZES.xen_extraversion_t), 'arg1 (xen_extraversion_t)');
    case XENVER.capabilities:
      return out(str(hv.version.capabilities, XEN_VERSION_STRING_SIZES.xen_capabilities_info_t), 'arg1 (xen_capabilities_info_t)');
    case XENVER.changeset:
      return out(str(hv.version.changeset, XEN_VERSION_STRING_SIZES.xen_changeset_info_t), 'arg1 (xen_changeset_info_t)');
    case XENVER.compile_info: {
      const b = new Uint8Array(xen_compile_info.size);
      encode(xen_compile_info, new DataView(b.buffer), 0, {
        compiler: str('gcc (mock) 12.2.0', 64),
        compile_by: str('mock', 16),
        compile_domain: str('xencall.test', 32),
        compile_date: str('Thu Jan  1 00:00:00 UTC 1970', 32),
      });
      return out(b, 'arg1 (struct xen_compile_info)');
    }
    case XENVER.platform_parameters: {
      const b = new Uint8Array(xen_platform_parameters.size);
      encode(xen_platform_parameters, new DataView(b.buffer), 0, { virt_start: 0xffff800000000000n });
      return out(b, 'arg1 (struct xen_platform_parameters)');
    }
    case XENVER.get_features: {
      const inb = hv.copyFromGuest(name, arg, xen_feature_info.size, 'arg1 (struct xen_feature_info)');
      if (!inb) return E('EFAULT');
      const fi = decode(xen_feature_info, dv(inb));
      if (fi.submap_idx !== 0) return E('EINVAL');
      // XENFEAT_writable_page_tables..XENFEAT_gnttab_map_avail_bits for a PV dom0.
      encode(xen_feature_info, dv(inb), 0, { submap: 0x0000_2f1d });
      return out(inb, 'arg1 (struct xen_feature_info)');
    }
    case XENVER.pagesize:
      return 4096n;
    default:
      return hv.unmodelled(name, `xen_version cmd ${cmd}`);
  }
}
