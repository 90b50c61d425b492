// The shared Backend contract (test/contract.ts), run against the real privcmd backend inside a
// Xen dom0: the same cases the mock passes in test/contract-mock.test.ts.

import { PrivcmdBackend } from '../../src/backends/privcmd.js';
import { backendContract } from '../contract.js';
import { vm } from './vm-env.js';

backendContract(`privcmd (${vm.noHypercallDev ? 'locked buffers, no /dev/xen/hypercall' : '/dev/xen/hypercall buffers'})`, {
  open: () => new PrivcmdBackend(),
  expectedVersion: vm.xenVersionCode,
});
