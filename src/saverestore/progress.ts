// Progress of save, restore and migrate: one message shape, handed to the caller's onProgress
// and published on a diagnostics_channel, so a script can watch without being the caller.

import diagnostics_channel from 'node:diagnostics_channel';

export const SAVERESTORE_CHANNEL = 'xencall:saverestore';
const channel = diagnostics_channel.channel(SAVERESTORE_CHANNEL);

export type SaveRestoreOperation = 'save' | 'restore' | 'migrate';

export interface SaveRestoreProgress {
  operation: SaveRestoreOperation;
  /** The domain being saved or migrated; for a restore, the domain being built (once it exists). */
  domid: number;
  /**
   * `memory`: a round of page copies ended (round 0 is the full pass; the final round runs with
   * the guest paused); `context`: the CPU context and HVM params were copied; `done`.
   */
  phase: 'memory' | 'context' | 'done';
  round: number;
  final: boolean;
  /** Pages copied this round. */
  roundPages: number;
  /** Pages copied so far, resends included. */
  pagesSent: number;
  /** Pages the guest dirtied during the previous round: what this round had to send (save/migrate). */
  dirtyLeft: number;
  elapsedMs: number;
}

export type ProgressListener = (p: SaveRestoreProgress) => void;

/** Calls the listener (if any) and publishes on the channel (if anyone listens). */
export function reportProgress(listener: ProgressListener | undefined, p: SaveRestoreProgress): void {
  if (channel.hasSubscribers) channel.publish(p);
  listener?.(p);
}
