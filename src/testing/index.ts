// "xencall/testing": the mock hypervisor, for users' unit tests and save/restore automation.
//
//   import { open } from 'xencall';
//   import { MockHypervisor } from 'xencall/testing';
//   const hv = new MockHypervisor({ strict: true });
//   hv.faults.inject({ op: 'domctl.getdomaininfo', direction: 'out' });
//   const xc = await open({ backend: hv.backend() });

export { MockHypervisor } from './hypervisor.js';
export type { MockBackend, MockHypervisorOptions } from './hypervisor.js';
export type { FaultPlan, FaultRule, ErrnoReply, FaultRuleSpec, RandomFaultSpec, ErrnoReplySpec, FaultOpName, CopyAttempt, CopyDirection, InjectedFault, InjectedReply } from './faults.js';
export type { CallHistory, HistoryEvent } from './history.js';
export { MockGuestWorkload, hvmContextBlob } from './world.js';
export type { MockDomain, MockConsole, MockHost, PageStore, DomainSpec, MockVcpu, MockEvtchn, EvtchnState } from './world.js';
export type { MockLogDirty, PreemptPolicy, PreemptSite, PagingPreempt } from './log-dirty.js';
export type { MockHvmState } from './hvm-state.js';
export type { MockTestGuest } from './test-guest-model.js';
export type { GuestScheduler, GuestProgram } from './scheduler.js';
export { bootTestGuest, TestGuest, defaultTestGuestWriteSet } from './test-guest.js';
export type { BootTestGuestOptions, WaitOptions, TestGuestPageReport } from './test-guest.js';
export { buildTestGuestImage, loadTestGuestImage, testGuestSourceDir, defaultTestGuestCacheDir, TestGuestError } from './test-guest-image.js';
export type { BuildTestGuestOptions, TestGuestImage, TestGuestSegment, TestGuestStep } from './test-guest-image.js';
export {
  TEST_GUEST_LAYOUT,
  TEST_GUEST_HOUSEKEEPING_GFNS,
  verifyTestGuestPage,
  fillTestGuestPage,
  testGuestPageWord,
  readTestGuestControl,
  writeTestGuestControl,
  readTestGuestCounter,
} from './test-guest-layout.js';
export type { TestGuestControl, TestGuestCounter } from './test-guest-layout.js';
