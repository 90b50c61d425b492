// What the real-Xen harness (xen-vm/run.sh) says about the machine these tests run in. Every
// expected value in test/xen/ comes from here; a missing variable is a loud failure, never a
// silent default, because a test that compares against a guess proves nothing.

import fs from 'node:fs';

export interface VmEnv {
  /** "4.17.7": the xen-hypervisor package's version. */
  xenVersion: string;
  /** (major << 16) | minor, as XENVER_version returns it. */
  xenVersionCode: number;
  /** dom0_max_vcpus. */
  vcpus: number;
  /** dom0_mem in MiB. */
  dom0MemMb: number;
  /** qemu -smp: the physical CPUs Xen sees. */
  qemuSmp: number;
  /** qemu -m in MiB. */
  qemuMemMb: number;
  /** True when run.sh removed /dev/xen/hypercall (--no-hypercall-dev). */
  noHypercallDev: boolean;
}

function need(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === '') {
    throw new Error(
      `${name} is not set: test/xen/ runs only inside the real-Xen VM, where xen-vm/run.sh exports the XENCALL_VM_* variables. ` +
        'Run it with `npm run test:xen` (scripts/test-xen.sh), not directly.',
    );
  }
  return v;
}

function int(name: string): number {
  const s = need(name);
  if (!/^\d+$/.test(s)) throw new Error(`${name}=${s} is not a non-negative integer`);
  return Number(s);
}

function load(): VmEnv {
  if (process.env.XENCALL_VM !== '1') need('XENCALL_VM_NOT_SET_SO_THIS_IS_NOT_THE_VM');
  const xenVersion = need('XENCALL_VM_XEN_VERSION');
  const m = /^(\d+)\.(\d+)/.exec(xenVersion);
  if (!m) throw new Error(`XENCALL_VM_XEN_VERSION=${xenVersion} is not a version`);
  const flag = need('XENCALL_VM_NO_HYPERCALL_DEV');
  if (flag !== '0' && flag !== '1') throw new Error(`XENCALL_VM_NO_HYPERCALL_DEV=${flag} must be 0 or 1`);
  const env: VmEnv = {
    xenVersion,
    xenVersionCode: (Number(m[1]) << 16) | Number(m[2]),
    vcpus: int('XENCALL_VM_VCPUS'),
    dom0MemMb: int('XENCALL_VM_DOM0_MEM_MB'),
    qemuSmp: int('XENCALL_VM_QEMU_SMP'),
    qemuMemMb: int('XENCALL_VM_QEMU_MEM_MB'),
    noHypercallDev: flag === '1',
  };
  // The harness and the machine must agree, or every comparison below is against the wrong thing.
  if (env.noHypercallDev === fs.existsSync('/dev/xen/hypercall')) {
    throw new Error(`XENCALL_VM_NO_HYPERCALL_DEV=${flag} but /dev/xen/hypercall ${env.noHypercallDev ? 'exists' : 'is missing'}`);
  }
  return env;
}

export const vm: VmEnv = load();
