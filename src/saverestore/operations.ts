// save, restore and migrate: the toolstack operations over the live-migration loop
// (../saverestore.ts liveMigrate), the image format (image.ts), the source (source.ts) and the
// domain builder (builder.ts). docs/saverestore.md describes them.

import { access, open as openFile, readFile, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { createReadStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { ErrorCodes, ValidationError, XencallError, describeValue } from '../errors.js';
import { optionBag, optionalFunction, optionalIntegerIn, signalOf } from '../input.js';
import { Xencall as XencallClass } from '../xencall.js';
import { allGfns, liveMigrate, type RoundReport } from '../saverestore.js';
import type { Xencall } from '../xencall.js';
import { DomainBuilder } from './builder.js';
import { IMAGE_FLAG_LIVE, ImageWriter, readImage, verifyImage, type DomainRecord, type ImageSink } from './image.js';
import { reportProgress, type ProgressListener, type SaveRestoreOperation } from './progress.js';
import { copyOut, inspectSource, readHvmParams } from './source.js';

export interface LiveOptions {
  /** Copy memory while the guest runs, then pause for a final round (default false: pause first). */
  live?: boolean;
  /** Live rounds after the full pass, at most (default 5). */
  maxRounds?: number;
  /** Stop the live rounds once fewer pages than this are dirty (default 50). */
  dirtyThreshold?: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

export interface SaveOptions extends LiveOptions {
  /**
   * The source domain after a successful save: destroyed (default, as `xl save`), left paused,
   * or resumed (a checkpoint: the image is the guest as it was at the final pause). After a failed
   * or cancelled save the domain is always left running as it was, log-dirty mode off.
   */
  after?: 'destroy' | 'pause' | 'resume';
}

export interface MigrateOptions extends LiveOptions {
  /** Leave the source paused instead of destroying it once the destination runs (for checks). */
  keepSource?: boolean;
  /** The destination's domid (default: Xen picks). */
  destinationDomid?: number;
  /** Leave the destination paused. */
  paused?: boolean;
}

export interface RestoreOptions {
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /** Domain id for the restored domain (default: Xen picks). */
  domid?: number;
  /** Leave the restored domain paused. */
  paused?: boolean;
}

export interface RoundSummary {
  round: number;
  final: boolean;
  /** Pages the loop found dirty (round 0: every gfn of the p2m). */
  dirty: number;
  /** Pages copied (holes skipped). */
  sent: number;
  cleanFaults: number;
}

export interface SaveReport {
  domid: number;
  live: boolean;
  rounds: RoundSummary[];
  pagesSent: number;
  /** Image size in bytes. */
  bytes: number;
  /** From the source's pause to the end of the image. */
  downtimeMs: number;
  totalMs: number;
}

export interface MigrateReport {
  source: number;
  destination: number;
  live: boolean;
  rounds: RoundSummary[];
  pagesSent: number;
  /** From the source's pause to the destination's unpause. */
  downtimeMs: number;
  totalMs: number;
}

export interface RestoreReport {
  domid: number;
  pages: number;
  totalMs: number;
}

/** Where save writes: a file path, a Node Writable, or a function handed each record's chunks. */
export type SaveTarget = string | Writable | ImageSink;
/** What restore reads: a file path, the image's bytes, or a stream of its bytes. */
export type RestoreSource = string | Uint8Array | AsyncIterable<Uint8Array>;

/** What the copy loop hands its pages and context to: an image writer or a domain builder. */
interface RecordTarget {
  begin(record: DomainRecord, live: boolean): Promise<void>;
  pages(gfns: BigUint64Array, data: Uint8Array): Promise<void>;
  hvmParams(params: ReadonlyMap<number, bigint>): Promise<void>;
  hvmContext(context: Uint8Array): Promise<void>;
  end(): Promise<void>;
}

interface SourceRun {
  rounds: RoundSummary[];
  pagesSent: number;
  /** performance.now() at the source's pause. */
  pausedAt: number;
}

/**
 * The source side, shared by save and migrate: checks the domain, then either pauses it and
 * copies everything, or runs the live loop (which pauses it for the final round); then the HVM
 * params and context. The domain is left paused, log-dirty off. On failure it is left as it
 * was found (running, log-dirty off).
 */
async function runSource(xc: Xencall, domid: number, operation: SaveRestoreOperation, target: RecordTarget, o: LiveOptions): Promise<SourceRun> {
  const t0 = performance.now();
  const live = o.live ?? false;
  const src = await inspectSource(xc, domid, live, o.signal);
  const wasPaused = src.info.paused;
  const run: SourceRun = { rounds: [], pagesSent: 0, pausedAt: 0 };
  let logDirty = false;
  const progress = (r: RoundSummary) =>
    reportProgress(o.onProgress, {
      operation,
      domid,
      phase: 'memory',
      round: r.round,
      final: r.final,
      roundPages: r.sent,
      pagesSent: run.pagesSent,
      dirtyLeft: r.dirty,
      elapsedMs: performance.now() - t0,
    });
  try {
    await target.begin(src.record, live);
    if (live) {
      logDirty = true;
      let sentThisRound = 0;
      await liveMigrate(xc, {
        domain: domid,
        pages: src.p2mSize,
        maxRounds: o.maxRounds ?? 5,
        dirtyThreshold: o.dirtyThreshold ?? 50,
        signal: o.signal,
        onPause: () => void (run.pausedAt = performance.now()),
        sendPages: async (gfns) => {
          sentThisRound = await copyOut(xc, domid, gfns, (g, d) => target.pages(g, d), o.signal);
          run.pagesSent += sentThisRound;
        },
        onRound: (r: RoundReport) => {
          const s: RoundSummary = { round: r.round, final: r.final, dirty: r.dirty, sent: sentThisRound, cleanFaults: r.cleanFaults };
          run.rounds.push(s);
          progress(s);
        },
      });
      logDirty = false;
    } else {
      await xc.domctl.pausedomain({ domain: domid }, { signal: o.signal });
      run.pausedAt = performance.now();
      const sent = await copyOut(xc, domid, allGfns(src.p2mSize), (g, d) => target.pages(g, d), o.signal);
      run.pagesSent = sent;
      const s: RoundSummary = { round: 0, final: true, dirty: src.p2mSize, sent, cleanFaults: 0 };
      run.rounds.push(s);
      progress(s);
    }
    await target.hvmParams(await readHvmParams(xc, domid, o.signal));
    await target.hvmContext((await xc.domctl.gethvmcontext({ domain: domid }, { signal: o.signal })).bytes);
    await target.end();
    return run;
  } catch (e) {
    await leaveAsFound(xc, domid, wasPaused, logDirty);
    throw e;
  }
}

/** After a failed or cancelled save: log-dirty off, and the pause we added taken back. Never throws. */
async function leaveAsFound(xc: Xencall, domid: number, wasPaused: boolean, logDirty: boolean): Promise<void> {
  try {
    if (logDirty) await xc.domctl.shadow_op.off({ domain: domid });
  } catch {
    // The domain may be gone, or log-dirty never got enabled; nothing more to undo.
  }
  try {
    const info = await xc.domctl.getdomaininfo({ domain: domid });
    if (info.paused && !wasPaused) await xc.domctl.unpausedomain({ domain: domid });
  } catch {
    // As above.
  }
}

/** Saves domain `domid` into an image (docs/saverestore.md has the format). */
export async function save(xc: Xencall, domid: number, target: SaveTarget, options: SaveOptions = {}): Promise<SaveReport> {
  options = checkOptions(xc, options, ['live']);
  checkDomid('domid', domid);
  const after = options.after ?? 'destroy';
  if (!['destroy', 'pause', 'resume'].includes(after)) throw new ValidationError('after', `must be destroy, pause or resume, got ${describeValue(after)}`);
  if (options.signal?.aborted) throw new XencallError(ErrorCodes.ABORTED, `save of domain ${domid} was aborted before it started`, { cause: options.signal.reason });
  const t0 = performance.now();
  checkTarget(target);
  // Opened once the source has passed its checks: a refused guest leaves no file behind.
  let sink: OpenSink | undefined;
  let writer: ImageWriter | undefined;
  let scratch = new Uint8Array(0);
  let bytes = 0;
  const counted: ImageSink = async (chunks) => {
    for (const c of chunks) bytes += c.length;
    await sink!.write(chunks);
  };
  let run: SourceRun;
  try {
    run = await runSource(xc, domid, 'save', {
      begin: async (record, live) => {
        sink = await openSink(target);
        writer = new ImageWriter(counted);
        await writer.begin(live ? IMAGE_FLAG_LIVE : 0, record);
      },
      // A copy first: the guest may write these pages while the record is checksummed and
      // written (a live round), and a record must hold the bytes its CRC was computed over.
      // Such a torn page is dirty again and is resent by a later round.
      pages: (g, d) => {
        // One scratch buffer, reused: the writer has handed the previous record to the sink by
        // the time the next batch arrives.
        if (scratch.length < d.length) scratch = new Uint8Array(d.length);
        const copy = scratch.subarray(0, d.length);
        copy.set(d);
        return writer!.pages(g, copy);
      },
      hvmParams: (p) => writer!.hvmParams(p),
      hvmContext: (c) => writer!.hvmContext(c),
      // Inside the source's run: an image that cannot be completed leaves the source running.
      end: async () => {
        await writer!.end();
        await sink!.close();
      },
    }, options);
  } catch (e) {
    await sink?.close(e);
    throw e;
  }
  const done = performance.now();
  if (after === 'destroy') await xc.domctl.destroydomain({ domain: domid });
  else if (after === 'resume') await xc.domctl.unpausedomain({ domain: domid });
  const report: SaveReport = {
    domid,
    live: options.live ?? false,
    rounds: run.rounds,
    pagesSent: run.pagesSent,
    bytes,
    downtimeMs: done - run.pausedAt,
    totalMs: done - t0,
  };
  reportProgress(options.onProgress, { operation: 'save', domid, phase: 'done', round: run.rounds.length - 1, final: true, roundPages: 0, pagesSent: run.pagesSent, dirtyLeft: 0, elapsedMs: report.totalMs });
  return report;
}

/** Image files up to this size are read into memory once; larger ones are read twice, streamed. */
export const READ_WHOLE_LIMIT = 64 * 1024 * 1024;

/**
 * Restores an image into a new domain and starts it; resolves with its domid. A file or a byte
 * array is checked whole first, so a truncated, corrupt or wrong-version image creates nothing;
 * a stream is checked as it arrives, and a failure destroys the domain it was building.
 */
export async function restore(xc: Xencall, source: RestoreSource, options: RestoreOptions = {}): Promise<RestoreReport> {
  options = checkOptions(xc, options, ['paused']);
  if (options.domid !== undefined) checkDomid('domid', options.domid);
  if (options.signal?.aborted) throw new XencallError(ErrorCodes.ABORTED, 'restore was aborted before it started', { cause: options.signal.reason });
  const t0 = performance.now();
  let stream: () => Uint8Array | AsyncIterable<Uint8Array>;
  if (typeof source === 'string') {
    // Opened here first, so a missing or unreadable file is a typed error, not a stream's.
    const unreadable = (e: NodeJS.ErrnoException) => {
      throw new ValidationError('source', `cannot read ${source}: ${e.code ?? e.message}`);
    };
    await access(source, constants.R_OK).catch(unreadable);
    if ((await stat(source).catch(unreadable)).size <= READ_WHOLE_LIMIT) {
      // Read once, checked and built from memory: in an emulated dom0 the second pass over the
      // file was a third of a 16 MiB restore (docs/performance.md).
      const bytes = new Uint8Array(await readFile(source).catch(unreadable));
      await verifyImage(bytes);
      stream = () => bytes;
    } else {
      await verifyImage(createReadStream(source, { highWaterMark: 1 << 20 }));
      stream = () => createReadStream(source, { highWaterMark: 1 << 20 });
    }
  } else if (source instanceof Uint8Array) {
    await verifyImage(source);
    stream = () => source;
  } else if (source && typeof (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function') {
    stream = () => source;
  } else {
    throw new ValidationError('source', `must be a file path, a Uint8Array or an async iterable of bytes, got ${describeValue(source)}`);
  }
  let builder: DomainBuilder | undefined;
  let context: Uint8Array | undefined;
  let pages = 0;
  try {
    for await (const rec of readImage(stream())) {
      if (options.signal?.aborted) throw new XencallError(ErrorCodes.ABORTED, 'restore was aborted', { cause: options.signal.reason });
      switch (rec.type) {
        case 'DOMAIN':
          builder = await DomainBuilder.create(xc, rec.domain, { domid: options.domid, signal: options.signal });
          break;
        case 'PAGE_DATA':
          await builder!.pages(rec.gfns, rec.data);
          pages += rec.gfns.length;
          reportProgress(options.onProgress, { operation: 'restore', domid: builder!.domid, phase: 'memory', round: 0, final: false, roundPages: rec.gfns.length, pagesSent: pages, dirtyLeft: 0, elapsedMs: performance.now() - t0 });
          break;
        case 'HVM_PARAMS':
          await builder!.hvmParams(rec.params);
          break;
        case 'HVM_CONTEXT':
          // Loaded at the end of the stream, as libxenguest's x86_hvm_stream_complete does.
          context = rec.context.slice();
          break;
        case 'END':
          if (!context) throw new XencallError(ErrorCodes.IMAGE_INVALID, 'the image has no HVM_CONTEXT record: there is no CPU state to start the guest with');
          await builder!.hvmContext(context);
          break;
      }
    }
    const domid = await builder!.start(options.paused ?? false);
    const totalMs = performance.now() - t0;
    reportProgress(options.onProgress, { operation: 'restore', domid, phase: 'done', round: 0, final: true, roundPages: 0, pagesSent: pages, dirtyLeft: 0, elapsedMs: totalMs });
    return { domid, pages, totalMs };
  } catch (e) {
    await builder?.abort();
    throw e;
  }
}

/** Live-migrates (or, without `live`, moves while paused) domain `domid` to a new domain on this host. */
export async function migrate(xc: Xencall, domid: number, options: MigrateOptions = {}): Promise<MigrateReport> {
  options = checkOptions(xc, options, ['live', 'keepSource', 'paused']);
  checkDomid('domid', domid);
  if (options.destinationDomid !== undefined) checkDomid('destinationDomid', options.destinationDomid);
  if (options.signal?.aborted) throw new XencallError(ErrorCodes.ABORTED, `migration of domain ${domid} was aborted before it started`, { cause: options.signal.reason });
  const t0 = performance.now();
  let builder: DomainBuilder | undefined;
  let context: Uint8Array | undefined;
  let run: SourceRun;
  try {
    run = await runSource(xc, domid, 'migrate', {
      begin: async (record) => {
        builder = await DomainBuilder.create(xc, record, { domid: options.destinationDomid, signal: options.signal });
      },
      pages: (g, d) => builder!.pages(g, d),
      hvmParams: (p) => builder!.hvmParams(p),
      hvmContext: async (c) => void (context = c),
      // Inside the source's run: should the destination fail to start, the source is resumed.
      end: async () => {
        await builder!.hvmContext(context!);
        await builder!.start(options.paused ?? false);
      },
    }, options);
  } catch (e) {
    await builder?.abort();
    throw e;
  }
  const switched = performance.now();
  if (!options.keepSource) await xc.domctl.destroydomain({ domain: domid });
  const report: MigrateReport = {
    source: domid,
    destination: builder!.domid,
    live: options.live ?? false,
    rounds: run.rounds,
    pagesSent: run.pagesSent,
    downtimeMs: switched - run.pausedAt,
    totalMs: performance.now() - t0,
  };
  reportProgress(options.onProgress, { operation: 'migrate', domid, phase: 'done', round: run.rounds.length - 1, final: true, roundPages: 0, pagesSent: run.pagesSent, dirtyLeft: 0, elapsedMs: report.totalMs });
  return report;
}

/** The common options, checked before anything is touched: a wrong type names its field. */
function checkOptions<T extends object>(xc: unknown, options: T | undefined, booleans: readonly string[], extra: (o: Record<string, unknown>) => void = () => undefined): T {
  if (!(xc instanceof XencallClass)) throw new ValidationError('xc', `must be a handle from open(), got ${describeValue(xc)}`);
  const o = optionBag('options', options) as Record<string, unknown>;
  for (const k of booleans) if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new ValidationError(k, `must be a boolean, got ${describeValue(o[k])}`);
  signalOf('signal', o.signal);
  optionalFunction('onProgress', o.onProgress);
  optionalIntegerIn('maxRounds', o.maxRounds, 0, 1000);
  optionalIntegerIn('dirtyThreshold', o.dirtyThreshold, 0, 1 << 30);
  extra(o);
  return o as T;
}

function checkDomid(field: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v >= 0x7ff0) throw new ValidationError(field, `must be a guest domain id (1 to 32751), got ${describeValue(v)}`);
}

interface OpenSink {
  write(chunks: readonly Uint8Array[]): Promise<void>;
  /** Flushes and closes; with an error, removes a file it created. Closes once; later calls do nothing. */
  close(error?: unknown): Promise<void>;
}

function checkTarget(target: unknown): void {
  if (typeof target === 'string' ? target.length > 0 : typeof target === 'function' || (target !== null && typeof target === 'object' && typeof (target as Writable).write === 'function')) return;
  throw new ValidationError('target', `must be a file path, a Writable or a function, got ${describeValue(target)}`);
}

async function openSink(target: SaveTarget): Promise<OpenSink> {
  if (typeof target === 'string') {
    const fh = await openFile(target, 'wx').catch((e: NodeJS.ErrnoException) => {
      throw new XencallError(ErrorCodes.VALIDATION, `cannot create ${target}: ${e.code ?? e.message}${e.code === 'EEXIST' ? ' (save never overwrites an image)' : ''}`, { cause: e });
    });
    const { rm } = await import('node:fs/promises');
    let closed = false;
    return {
      write: async (chunks) => void (await fh.writev(chunks as Uint8Array[])),
      close: async (error) => {
        if (!closed) {
          closed = true;
          await fh.close();
        }
        if (error !== undefined) await rm(target, { force: true });
      },
    };
  }
  if (typeof target === 'function') {
    return { write: async (chunks) => void (await target(chunks)), close: async () => undefined };
  }
  if (target && typeof (target as Writable).write === 'function') {
    const w = target as Writable;
    return {
      // The chunks may point into a foreign mapping that is unmapped once this returns: wait for
      // the stream to have consumed the last one (write callbacks run in order).
      write: (chunks) =>
        new Promise<void>((resolve, reject) => {
          chunks.forEach((c, i) => w.write(c, i === chunks.length - 1 ? (err) => (err ? reject(err) : resolve()) : undefined));
          if (chunks.length === 0) resolve();
        }),
      close: async () => undefined,
    };
  }
  throw new ValidationError('target', `must be a file path, a Writable or a function, got ${describeValue(target)}`);
}
