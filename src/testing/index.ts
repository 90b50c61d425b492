// "xencall/testing": the mock hypervisor, for users' unit tests and save/restore automation.
//
//   import { open } from 'xencall';
//   import { MockHypervisor } from 'xencall/testing';
//   const hv = new MockHypervisor({ strict: true });
//   hv.faults.inject({ op: 'domctl.getdomaininfo', direction: 'out' });
//   const xc = await open({ backend: hv.backend() });

export { MockHypervisor, MockBackend } from './hypervisor.js';
export type { MockHypervisorOptions } from './hypervisor.js';
export { FaultPlan, FaultRule } from './faults.js';
export type { FaultRuleSpec, RandomFaultSpec, CopyAttempt, CopyDirection, InjectedFault } from './faults.js';
export { CallHistory } from './history.js';
export type { HistoryEvent } from './history.js';
export { MockDomain, MockConsole, MockGuestWorkload, MockHost, PageStore, MAX_CONTROLLER_PAUSE_COUNT, LOG_DIRTY_CHUNK_BYTES, DEFAULT_MAX_GRANT_FRAMES, ALL_CPUS, hvmContextBlob } from './world.js';
export type { DomainSpec, MockVcpu, MockEvtchn, EvtchnState } from './world.js';
export { xorshift32 } from './random.js';
export { MockLogDirty, DEFAULT_PREEMPT, LOGDIRTY_NODE_ENTRIES, LOG_DIRTY_LEAF_PAGES } from './log-dirty.js';
export type { PreemptPolicy, PreemptSite, PagingPreempt } from './log-dirty.js';
