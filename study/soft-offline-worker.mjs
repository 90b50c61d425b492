// The stressor of the EFAULT study (study/efault.ts): a worker thread that forces Linux to migrate
// the pages of xencall's hypercall buffers while the main thread issues hypercalls from them.
//
// madvise(MADV_SOFT_OFFLINE) on a page makes the kernel migrate it (migrate_pages(): the PTE
// becomes a migration entry while the contents are copied) and then retire the old frame for
// good. If Xen's copy_from_guest/copy_to_guest touches the page inside that window, the copy
// fails and the hypercall returns -EFAULT: the failure the project exists for, on demand.
// madvise() acts on the calling process's own mappings, so this must be a thread of the process
// that owns the buffers, not a child process.
//
// Plain JavaScript, not TypeScript: under Node 20, tsx's `--import` hooks do not reach worker
// threads, so a .ts worker would not load in dom0.
//
// workerData: { targets: SharedArrayBuffer, intervalMs, cap, control: SharedArrayBuffer }
// `targets` is a live set the main thread keeps up to date (study/buffer-stressor.ts: fixed pages,
// or every hypercall buffer as it is allocated): a BigInt64Array whose [0] is the count and
// [1..count] the page addresses.
// control, as an Int32Array:
//   [0] stop flag: the main thread sets 1 and notifies; the worker also waits on it between pages
//   [1] madvise calls made        [2] pages soft-offlined (success)
//   [3] refused with EIO           [4] refused with EBUSY       [5] other errno (last one in [6])
//   [7] 1 once the cap was reached [8] 1 once the worker is running
//   [9] milliseconds from the worker's start to the cap or the stop: how long pages were offlined
// Each soft-offlined frame is lost to dom0 until reboot, so successes stop at `cap`.

import { createRequire } from 'node:module';
import { workerData } from 'node:worker_threads';

const MADV_SOFT_OFFLINE = 101; // include/uapi/asm-generic/mman-common.h
const PAGE = 4096;
const EIO = 5;
const EBUSY = 16;

const { targets, intervalMs, cap, control } = workerData;
const c = new Int32Array(control);
const live = new BigInt64Array(targets);

const require = createRequire(import.meta.url);
const koffi = require('koffi');
const madvise = koffi.load('libc.so.6').func('int madvise(void *addr, size_t len, int advice)');

const t0 = performance.now();
Atomics.store(c, 8, 1);
while (Atomics.load(c, 0) === 0) {
  if (Atomics.load(c, 2) >= cap) {
    Atomics.store(c, 7, 1);
    break;
  }
  const n = Number(Atomics.load(live, 0));
  if (n === 0) {
    Atomics.wait(c, 0, 0, intervalMs);
    continue;
  }
  const addr = BigInt.asUintN(64, Atomics.load(live, 1 + Math.floor(Math.random() * n)));
  const r = madvise(addr, PAGE, MADV_SOFT_OFFLINE);
  // errno is read at once, before anything else can call into libc on this thread.
  const errno = r === 0 ? 0 : koffi.errno();
  Atomics.add(c, 1, 1);
  if (r === 0) Atomics.add(c, 2, 1);
  else if (errno === EIO) Atomics.add(c, 3, 1);
  else if (errno === EBUSY) Atomics.add(c, 4, 1);
  else {
    Atomics.add(c, 5, 1);
    Atomics.store(c, 6, errno);
  }
  // Sleeps the interval, or returns at once when the main thread asks the worker to stop.
  Atomics.wait(c, 0, 0, intervalMs);
}
Atomics.store(c, 9, Math.round(performance.now() - t0));
