// xencall: Xen hypercalls from a Linux dom0, with a retry that knows which hypercalls may be
// re-issued after -EFAULT. See README.md and docs/.

export { open, openSync, Xencall, XENCALL_OPENFLAG_NON_REENTRANT } from './xencall.js';
export type { OpenOptions, CallOptions, ArgValue } from './xencall.js';
export type { Backend, BackendPages, BackendForeignMap } from './backend.js';
export { ForeignMemory, ForeignMapping } from './foreign-memory.js';
export type { GfnList, MapOptions, MapResourceOptions } from './foreign-memory.js';
export { HypercallBuffer } from './buffers.js';
export {
  ErrorCodes,
  XencallError,
  HypercallError,
  ValidationError,
  ShortCountError,
  XenVersionUnsupportedError,
  errnoNameOf,
  errnoNumber,
  describeErrno,
} from './errors.js';
export type { ErrorCode, RetryOutcome, HypercallErrorInfo, XenVersion } from './errors.js';
export { XEN_ERRNO } from './errno-table.js';
export { TABLE, rowByName } from './hypercalls/table.js';
export { verdictFor, readOnlyFor, XEN_SUPPORTED_VERSION } from './hypercalls/row.js';
export type { Row, Verdict, FaultClass, Citation, ActsWhen } from './hypercalls/row.js';
export { HYPERCALLS, hypercallByNumber } from './hypercalls/hypercalls.js';
export type { HypercallName, HypercallSpec } from './hypercalls/hypercalls.js';
export * as numbers from './hypercalls/numbers.js';
export * as structs from './hypercalls/structs.js';
export { decode, encode } from './layout.js';
export type { StructLayout, Decoded } from './layout.js';
export { decideRetry, DEFAULT_RETRY_POLICY } from './retry/decide.js';
export type { RetryPolicy, RetryInput, RetryDecision, RefusalKind } from './retry/decide.js';
export { CHANNELS } from './retry/runner.js';
export type { CallMessage, AttemptMessage, RetryMessage, RefuseMessage, CompleteMessage } from './retry/runner.js';
export type { OpCounters } from './retry/stats.js';
export type { DomainInfo } from './ops/domctl.js';
export type { PhysInfo, ConsoleRead } from './ops/sysctl.js';
export type { EvtchnStatus } from './ops/misc.js';
export { liveMigrate } from './saverestore.js';
export { parseHvmContext, buildHvmContext, findHvmRecord, decodeHvmHeader, pvhStartContexts } from './hvm-context.js';
export type { HvmRecord, HvmContext } from './hvm-context.js';
export type { LiveMigrationOptions, MigrationReport, RoundReport, CleanStrategy } from './saverestore.js';
export { HVM_PARAM, HVM_NR_PARAMS, XEN_SCHEDULER, XEN_VCPUAFFINITY, XEN_X86_EMU, SHUTDOWN } from './hypercalls/values.js';
export type { SchedId, CpuTopology, NumaNode, NumaInfo, CpuIdle } from './ops/sysctl.js';
export type { VcpuInfo, VcpuAffinity, VcpuContext, VcpuGuestContext, PageFrameTypes } from './ops/domctl.js';
export type { HvmParam } from './ops/hvm.js';
export { findDomainByHandle, findLeakedPorts, recoverConsole } from './recovery.js';
export type { LeakedPortsOptions, ConsoleRecoveryOptions, RecoveredConsole } from './recovery.js';
export { openPrivcmd, PrivcmdBackend } from './backends/privcmd.js';
export type { PrivcmdOptions } from './backends/privcmd.js';
export { save, restore, migrate } from './saverestore/operations.js';
export type { SaveOptions, RestoreOptions, MigrateOptions, SaveReport, RestoreReport, MigrateReport, RoundSummary, SaveTarget, RestoreSource, LiveOptions } from './saverestore/operations.js';
export { SAVERESTORE_CHANNEL } from './saverestore/progress.js';
export type { SaveRestoreProgress, ProgressListener, SaveRestoreOperation } from './saverestore/progress.js';
export { GuestUnsupportedError } from './saverestore/source.js';
export { ImageError, verifyImage, IMAGE_VERSION } from './saverestore/image.js';
export type { ImageProblem, ImageSummary } from './saverestore/image.js';
export { createDomainAdopting } from './recovery.js';
export type { CreateDomainArgs } from './recovery.js';
