// "xencall/testing": the mock hypervisor, for users' unit tests and save/restore automation.
//
//   import { open } from 'xencall';
//   import { MockHypervisor } from 'xencall/testing';
//   const hv = new MockHypervisor({ strict: true });
//   hv.faults.inject({ op: 'domctl.getdomaininfo', direction: 'out' });
//   const xc = await open({ backend: hv.backend() });

export { MockHypervisor, MockBackend } from './hypervisor.js';
export type { MockHypervisorOptions } from './hypervisor.js';
export { FaultPlan, FaultRule, ErrnoReply } from './faults.js';
export type { FaultRuleSpec, RandomFaultSpec, ErrnoReplySpec, FaultOpName, CopyAttempt, CopyDirection, InjectedFault, InjectedReply } from './faults.js';
export { CallHistory } from './history.js';
export type { HistoryEvent } from './history.js';
export { MockDomain, MockConsole, MockGuestWorkload, MockHost, PageStore, MAX_CONTROLLER_PAUSE_COUNT, LOG_DIRTY_CHUNK_BYTES, DEFAULT_MAX_GRANT_FRAMES, ALL_CPUS, hvmContextBlob } from './world.js';
export type { DomainSpec, MockVcpu, MockEvtchn, EvtchnState } from './world.js';
export { xorshift32 } from './random.js';
export { MockLogDirty, DEFAULT_PREEMPT, LOGDIRTY_NODE_ENTRIES, LOG_DIRTY_LEAF_PAGES } from './log-dirty.js';
export type { PreemptPolicy, PreemptSite, PagingPreempt } from './log-dirty.js';
export { MockHvmState } from './hvm-state.js';
export { MockTestGuest, recogniseTestGuest } from './test-guest-model.js';
export { GuestScheduler } from './scheduler.js';
export type { GuestProgram } from './scheduler.js';
export { bootTestGuest, TestGuest, defaultTestGuestWriteSet } from './test-guest.js';
export type { BootTestGuestOptions, WaitOptions, TestGuestPageReport } from './test-guest.js';
export { buildTestGuestImage, loadTestGuestImage, testGuestSourceDir, defaultTestGuestCacheDir, testGuestSymbols, TestGuestError } from './test-guest-image.js';
export type { BuildTestGuestOptions, TestGuestImage, TestGuestSegment, TestGuestStep } from './test-guest-image.js';
export {
  TEST_GUEST_LAYOUT,
  TEST_GUEST_CONTROL,
  TEST_GUEST_COUNTER,
  TEST_GUEST_WORK,
  TEST_GUEST_PATTERN,
  TEST_GUEST_IMAGE_HEADER,
  TEST_GUEST_DEFAULT_WRITE_SET,
  TEST_GUEST_HOUSEKEEPING_GFNS,
  verifyTestGuestPage,
  fillTestGuestPage,
  testGuestPageWord,
  isWritableTestGuestGfn,
  checkWriteSet,
  readTestGuestControl,
  writeTestGuestControl,
  readTestGuestCounter,
} from './test-guest-layout.js';
export type { TestGuestControl, TestGuestCounter } from './test-guest-layout.js';
