// Smoke check for the real-Xen harness: run inside dom0 with
//   xen-vm/run.sh -- node xen-vm/smoke.cjs
// Issues __HYPERVISOR_xen_version(XENVER_version) through IOCTL_PRIVCMD_HYPERCALL with a raw
// syscall(SYS_ioctl) from koffi, and compares it with XENCALL_VM_XEN_VERSION.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const koffi = require(path.join(__dirname, '..', 'node_modules', 'koffi'));

const SYS_ioctl = 16;
const IOCTL_PRIVCMD_HYPERCALL = 0x00305000; // _IOC(_IOC_NONE, 'P', 0, 48)
const HYPERVISOR_xen_version = 17n;
const XENVER_version = 0n;

const libc = koffi.load('libc.so.6');
const syscall = libc.func('long syscall(long nr, ...)');
const errnoLocation = libc.func('int *__errno_location(void)');

const fd = fs.openSync('/dev/xen/privcmd', fs.constants.O_RDWR);
const call = Buffer.alloc(48); // struct privcmd_hypercall { u64 op; u64 arg[5]; }
call.writeBigUInt64LE(HYPERVISOR_xen_version, 0);
call.writeBigUInt64LE(XENVER_version, 8);
const ret = syscall(SYS_ioctl, 'int', fd, 'unsigned long', IOCTL_PRIVCMD_HYPERCALL, 'void *', call);
const errno = ret < 0 ? koffi.decode(errnoLocation(), 'int') : 0;
fs.closeSync(fd);

let hypercallDev = 'present';
try {
  fs.closeSync(fs.openSync('/dev/xen/hypercall', fs.constants.O_RDWR));
} catch (e) {
  hypercallDev = e.code;
}

const got = ret >= 0 ? `${ret >>> 16}.${ret & 0xffff}` : null;
const want = (process.env.XENCALL_VM_XEN_VERSION || '').split('.').slice(0, 2).join('.');
const result = {
  xen_version: ret >= 0 ? '0x' + ret.toString(16) : ret,
  errno,
  decoded: got,
  expected: want || null,
  hypercall_dev: hypercallDev,
  no_hypercall_dev_requested: process.env.XENCALL_VM_NO_HYPERCALL_DEV === '1',
};
console.log(JSON.stringify(result));
const devOk = result.no_hypercall_dev_requested ? hypercallDev === 'ENOENT' : hypercallDev === 'present';
const ok = got !== null && (!want || got === want) && devOk;
console.log(ok ? 'smoke: ok' : 'smoke: FAILED');
process.exit(ok ? 0 : 1);
