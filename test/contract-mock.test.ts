import { MockHypervisor } from '../src/testing/index.js';
import { backendContract } from './contract.js';

backendContract('mock', { open: () => new MockHypervisor().backend(), expectedVersion: (4 << 16) | 17 });
backendContract('mock (strict off, buffersNeverFault)', {
  open: () => new MockHypervisor({ buffersNeverFault: true }).backend(),
  expectedVersion: (4 << 16) | 17,
});
