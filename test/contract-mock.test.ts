import { MockHypervisor } from '../src/testing/index.js';
import { backendContract, foreignMemoryContract } from './contract.js';

backendContract('mock', { open: () => new MockHypervisor().backend(), expectedVersion: (4 << 16) | 17 });
backendContract('mock (strict off, buffersNeverFault)', {
  open: () => new MockHypervisor({ buffersNeverFault: true }).backend(),
  expectedVersion: (4 << 16) | 17,
});
// One hypervisor for the whole suite, as a real dom0 has one Xen under all its handles.
const hv = new MockHypervisor({ strict: true });
foreignMemoryContract('mock', { open: () => hv.backend(), bigMapPages: 10_000 });
