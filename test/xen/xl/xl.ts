// Xen's own toolstack (xl) as an oracle and a timing baseline, inside the real-Xen harness's dom0
// (xen-vm/run.sh --with-xl starts xenstored, xen-init-dom0 and xenconsoled and puts xl on PATH).
// Every xl call runs under a timeout and is reported as it ended — exit code, signal, or timed
// out — never retried or hidden: on this machine xl has hung once and died with malloc
// corruption once (shared/xen-guest-notes.md, "Pitfalls seen with xl here").

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface XlRun {
  args: readonly string[];
  /** The exit status, or null when a signal ended xl. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the timeout ended it (then `signal` says with what). */
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, by process.hrtime. */
  ms: number;
}

export interface XlOptions {
  /** Limit for this call (default 60 s); then SIGTERM to xl's process group, SIGKILL 5 s later. */
  timeoutMs?: number;
}

export type XlAvailability = { ok: true } | { ok: false; reason: string };

/** Whether the harness started the toolstack, and if not, why (its own words). */
export function xlAvailable(env: NodeJS.ProcessEnv = process.env): XlAvailability {
  if (env.XENCALL_VM !== '1') return { ok: false, reason: 'not inside the real-Xen VM (xen-vm/run.sh)' };
  if (env.XENCALL_VM_WITH_XL !== '1') return { ok: false, reason: 'the VM was booted without --with-xl' };
  if (env.XENCALL_VM_XL !== 'ready') {
    return { ok: false, reason: `the toolstack did not start: ${env.XENCALL_VM_XL_ERROR || env.XENCALL_VM_XL || 'no status from /init'}` };
  }
  return { ok: true };
}

const DEFAULT_TIMEOUT_MS = 60_000;
const KILL_GRACE_MS = 5_000;
/** After exit, how long to wait for the pipes to close (a daemonised child may hold them). */
const PIPE_GRACE_MS = 1_000;

/** Runs `xl ARGS`. Resolves however xl ends; only a failure to spawn rejects. */
export function xl(args: readonly string[], opts: XlOptions = {}): Promise<XlRun> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    // Its own process group, so that a timeout also ends what xl started (libxl-save-helper,
    // the `sh -c` of a migration's receiver). xl's own monitoring daemons call setsid() and
    // leave the group, as they should.
    const child = spawn('xl', [...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const signalGroup = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        // The group is gone already.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      signalGroup('SIGTERM');
      killTimer = setTimeout(() => signalGroup('SIGKILL'), KILL_GRACE_MS);
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run xl (is the VM booted with --with-xl?): ${e.message}`));
    });
    child.on('exit', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        resolve({ args, code, signal, timedOut, stdout, stderr, ms });
      };
      child.on('close', finish);
      setTimeout(finish, PIPE_GRACE_MS).unref();
    });
  });
}

/** One line saying how an xl run ended, with the end of what it printed. */
export function describeXlRun(r: XlRun): string {
  const how = r.timedOut
    ? `TIMED OUT after ${r.ms.toFixed(0)} ms (ended by ${r.signal ?? `exit ${r.code}`})`
    : r.signal
      ? `KILLED by ${r.signal} after ${r.ms.toFixed(0)} ms`
      : `exit ${r.code} after ${r.ms.toFixed(0)} ms`;
  const tail = (s: string) => s.trim().split('\n').slice(-6).join(' | ');
  return `xl ${r.args.join(' ')}: ${how}; stderr: ${tail(r.stderr) || '(none)'}; stdout: ${tail(r.stdout) || '(none)'}`;
}

export class XlFailure extends Error {
  constructor(readonly run: XlRun) {
    super(describeXlRun(run));
    this.name = 'XlFailure';
  }
}

/** Runs xl and insists on exit status 0; anything else is an XlFailure carrying the run. */
export async function xlOk(args: readonly string[], opts: XlOptions = {}): Promise<XlRun> {
  const r = await xl(args, opts);
  if (r.code !== 0 || r.timedOut) throw new XlFailure(r);
  return r;
}

// ------------------------------------------------------------------------------ guests

export interface PvhGuestConfig {
  name: string;
  /** An ELF with the XEN_ELFNOTE_PHYS32_ENTRY note. */
  kernel: string;
  memoryMb: number;
  vcpus?: number;
  /**
   * tsc_mode="native": a Linux PVH guest needs it under qemu TCG, whose SVM has no NRIPS, so
   * Xen cannot emulate RDTSCP for it (shared/xen-guest-notes.md). Default true.
   */
  tscNative?: boolean;
  /** What Xen does when the guest crashes; "preserve" keeps it for inspection (default). */
  onCrash?: 'destroy' | 'preserve' | 'restart';
}

const quoted = (s: string) => {
  if (/["\\\n]/.test(s)) throw new Error(`cannot put ${JSON.stringify(s)} in an xl config string`);
  return `"${s}"`;
};

/** The xl.cfg(5) text of a PVH guest booted straight from its kernel ELF (no firmware, no disks). */
export function pvhConfig(g: PvhGuestConfig): string {
  return [
    `name = ${quoted(g.name)}`,
    'type = "pvh"',
    `kernel = ${quoted(g.kernel)}`,
    `memory = ${g.memoryMb}`,
    `maxmem = ${g.memoryMb}`,
    `vcpus = ${g.vcpus ?? 1}`,
    ...((g.tscNative ?? true) ? ['tsc_mode = "native"'] : []),
    `on_crash = ${quoted(g.onCrash ?? 'preserve')}`,
    '',
  ].join('\n');
}

let scratch: string | undefined;
/** A private dir in dom0's tmpfs for configs and save images. */
export function xlScratchDir(): string {
  scratch ??= fs.mkdtempSync(path.join(os.tmpdir(), 'xencall-xl-'));
  return scratch;
}

/** `xl domid NAME`. */
export async function xlDomid(name: string, opts: XlOptions = {}): Promise<number> {
  const r = await xlOk(['domid', name], opts);
  const id = Number(r.stdout.trim());
  if (!Number.isInteger(id) || id <= 0) throw new Error(`xl domid ${name} printed ${JSON.stringify(r.stdout)}`);
  return id;
}

export interface XlListRow {
  name: string;
  domid: number;
  memMb: number;
  vcpus: number;
  state: string;
  timeS: number;
}

/** `xl list`, parsed. */
export async function xlList(opts: XlOptions = {}): Promise<XlListRow[]> {
  const r = await xlOk(['list'], opts);
  const rows: XlListRow[] = [];
  for (const line of r.stdout.split('\n').slice(1)) {
    const m = /^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+([\d.]+)\s*$/.exec(line);
    if (m) rows.push({ name: m[1]!, domid: Number(m[2]), memMb: Number(m[3]), vcpus: Number(m[4]), state: m[5]!, timeS: Number(m[6]) });
  }
  return rows;
}

/** `xl list --long DOMID`: libxl's JSON for one domain (the config it was built from). */
export async function xlListLong(domid: number, opts: XlOptions = {}): Promise<XlDomainJson> {
  const r = await xlOk(['list', '--long', String(domid)], opts);
  const parsed: unknown = JSON.parse(r.stdout);
  if (!Array.isArray(parsed) || parsed.length !== 1) throw new Error(`xl list --long ${domid} did not print one domain: ${r.stdout.slice(0, 200)}`);
  return parsed[0] as XlDomainJson;
}

/** The parts of `xl list --long` the checks read. */
export interface XlDomainJson {
  domid: number;
  config: {
    c_info: { type: string; name: string; uuid: string };
    b_info: { max_memkb: number; target_memkb: number; max_vcpus: number; tsc_mode?: string };
  };
}

/** Writes the config and runs `xl create`; returns the new domid. */
export async function xlCreate(g: PvhGuestConfig, opts: XlOptions = {}): Promise<{ domid: number; run: XlRun; configFile: string }> {
  const configFile = path.join(xlScratchDir(), `${g.name}.cfg`);
  fs.writeFileSync(configFile, pvhConfig(g));
  const run = await xlOk(['create', configFile], opts);
  return { domid: await xlDomid(g.name, opts), run, configFile };
}

/** `xl save DOMID FILE`: a non-live save; xl destroys the domain once the image is written. */
export function xlSave(domid: number, file: string, opts: XlOptions = {}): Promise<XlRun> {
  return xlOk(['save', String(domid), file], opts);
}

/** `xl restore FILE`: a new domain (a new domid, the saved name) from the image. */
export async function xlRestore(file: string, name: string, opts: XlOptions = {}): Promise<{ domid: number; run: XlRun }> {
  const run = await xlOk(['restore', file], opts);
  return { domid: await xlDomid(name, opts), run };
}

/**
 * A live migration to this same host: `xl migrate -s '' DOMID 'xl migrate-receive'`. With an
 * empty ssh command xl runs the "host" string itself through `sh -c` as the receiver
 * (tools/xl/xl_migrate.c, main_migrate), so sender and receiver are both local xl processes.
 * The source domain is gone afterwards; the guest lives on under its name with a new domid.
 */
export async function xlMigrateLocal(domid: number, name: string, opts: XlOptions = {}): Promise<{ domid: number; run: XlRun }> {
  const run = await xlOk(['migrate', '-s', '', String(domid), 'xl migrate-receive'], opts);
  return { domid: await xlDomid(name, opts), run };
}

/** `xl destroy DOMID`. */
export function xlDestroy(domid: number, opts: XlOptions = {}): Promise<XlRun> {
  return xlOk(['destroy', String(domid)], opts);
}

// ------------------------------------------------------------------------------ timing

export interface XlTiming {
  op: string;
  ms: number;
  /** The guest's pages at the time (getdomaininfo tot_pages before the operation). */
  pages: number;
  pagesPerSecond: number;
}

/** Wall time of an xl run as pages per second of the guest it moved. Measured, never asserted. */
export function xlTiming(op: string, run: XlRun, pages: number): XlTiming {
  return { op, ms: run.ms, pages, pagesPerSecond: run.ms > 0 ? (pages * 1000) / run.ms : 0 };
}

export function formatXlTiming(t: XlTiming): string {
  return `${t.op}: ${t.ms.toFixed(0)} ms for ${t.pages} pages (${(t.pages * 4) / 1024} MiB), ${t.pagesPerSecond.toFixed(0)} pages/s`;
}
