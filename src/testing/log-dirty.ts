// One domain's log-dirty state as Xen 4.17 keeps it for a HAP guest (the only log-dirty this
// Xen build has: it is built without shadow paging), and the hypercall_preempt_check() policy
// that decides where the mock's long paging ops stop for a continuation. The handlers that
// act on this state are in paging.ts; MockDomain.writePage() calls guestWrite().
//
// Citations are to xen-project/xen at RELEASE-4.17.7.

import { ValidationError } from '../errors.js';
import { xorshift32 } from './random.js';

/** One log-dirty leaf: a PAGE_SIZE page of bitmap (paging_log_dirty_op copies one per step). */
export const LOG_DIRTY_CHUNK_BYTES = 4096;
/** Pages one leaf covers. */
export const LOG_DIRTY_LEAF_PAGES = LOG_DIRTY_CHUNK_BYTES * 8;
/** Entries of each interior node of the log-dirty trie (asm/paging.h: LOGDIRTY_NODE_ENTRIES). */
export const LOGDIRTY_NODE_ENTRIES = 512;

/** Where Xen calls hypercall_preempt_check() in a paging op (xen/arch/x86/mm/paging.c). */
export interface PreemptSite {
  /** The op in progress: paging_log_dirty_op for CLEAN/PEEK, paging_free_log_dirty_bitmap for OFF. */
  readonly op: 'clean' | 'peek' | 'off';
  readonly domid: number;
  /** 'l3': after one l3 entry (a node of 512 leaves); 'l4': after one l4 entry. */
  readonly level: 'l3' | 'l4';
  readonly i4: number;
  readonly i3: number;
  /** Pages of the bitmap handled so far (CLEAN/PEEK). */
  readonly done: bigint;
}

/**
 * What hypercall_preempt_check() answers at each site: 'never', 'always', a seeded rate
 * ({ rate, seed }: reproducible, from the mock's xorshift32), or a function of the site.
 */
export type PreemptPolicy = 'never' | 'always' | { readonly rate: number; readonly seed: number } | ((site: PreemptSite) => boolean);

/**
 * The default: a seeded 20% chance at every check. Real Xen preempts when a softirq or event is
 * pending, which a CLEAN of any size can meet at its last check; code that ignores
 * continuations must meet them on the mock too, and the seed keeps every run the same.
 */
export const DEFAULT_PREEMPT: PreemptPolicy = { rate: 0.2, seed: 0x10cd1e7 };

export function preemptChecker(policy: PreemptPolicy): (site: PreemptSite) => boolean {
  if (policy === 'never') return () => false;
  if (policy === 'always') return () => true;
  if (typeof policy === 'function') return policy;
  if (typeof policy === 'object' && policy !== null && typeof policy.rate === 'number' && policy.rate >= 0 && policy.rate <= 1 && Number.isInteger(policy.seed)) {
    const rand = xorshift32(policy.seed);
    const rate = policy.rate;
    return () => rand() < rate;
  }
  throw new ValidationError('preempt', "must be 'never', 'always', { rate: 0..1, seed: integer } or a function of the preemption site");
}

/** d->arch.paging.preempt: a CLEAN/PEEK/OFF stopped at a preemption point, waiting for hypercall 49. */
export interface PagingPreempt {
  /** XEN_DOMCTL_SHADOW_OP_* of the op in progress (preempt.op). */
  readonly op: number;
  /** preempt.log_dirty.done: pages handled (CLEAN/PEEK). */
  readonly done: bigint;
  readonly i4: number;
  readonly i3: number;
}

const testBit = (bits: Uint8Array, n: number) => n >> 3 < bits.length && (bits[n >> 3]! & (1 << (n & 7))) !== 0;

/** A Uint8Array at least `bytes` long, keeping the contents. */
function grown(bits: Uint8Array, bytes: number): Uint8Array {
  if (bits.length >= bytes) return bits;
  const out = new Uint8Array(Math.max(bytes, bits.length * 2));
  out.set(bits);
  return out;
}

export class MockLogDirty {
  /** PG_log_dirty in d->arch.paging.mode. */
  enabled = false;
  /**
   * The trie's leaves laid end to end: bit n is pfn n. Grows as pages are marked; past its end
   * everything reads as clean, as an absent leaf does.
   */
  bitmap: Uint8Array = new Uint8Array(0);
  /**
   * d->arch.paging.log_dirty.fault_count. Only shadow paging counts faults
   * (shadow/multi.c sh_page_fault, line 2627); HAP's path never touches it, so it stays 0.
   */
  faultCount = 0;
  /** log_dirty.dirty_count: bits newly set (paging_mark_pfn_dirty, lines 325-334). */
  dirtyCount = 0;
  /**
   * The p2m types while log-dirty is on: bit n set = pfn n is p2m_ram_rw (a write goes through
   * unseen), clear = p2m_ram_logdirty (read-only: the next write faults and is logged).
   * ENABLE and a completed CLEAN clear it all (p2m_change_entry_type_global rw -> logdirty).
   */
  writable: Uint8Array = new Uint8Array(0);
  /** Allocated trie nodes: leaves (pfn >> 15), l2 nodes (leaf >> 9), l3 nodes (leaf >> 18). */
  readonly leaves = new Set<number>();
  readonly l2Nodes = new Set<number>();
  readonly l3Nodes = new Set<number>();
  /** log_dirty.top is valid: from the first mark until OFF has freed everything. */
  private top = false;
  /**
   * Frames Xen keeps mapped writable for itself (d->arch.hvm.write_map, hvm_map_guest_frame_rw
   * with permanent set). Xen's own writes through them never fault, so only a CLEAN/PEEK with
   * XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL reports them (hvm_mapped_guest_frames_mark_dirty).
   */
  readonly mappedFrames = new Set<number>();

  /**
   * A guest's write to pfn `gfn` (hvm/hvm.c hvm_hap_nested_page_fault, lines 1949-1970): on a
   * p2m_ram_logdirty page it faults, Xen marks the page dirty and changes its type to
   * p2m_ram_rw, and the write is retried; on a p2m_ram_rw page nothing is seen. Returns whether
   * the write was logged.
   */
  guestWrite(gfn: number): boolean {
    if (!this.enabled || testBit(this.writable, gfn)) return false;
    this.markPfnDirty(gfn);
    this.writable = grown(this.writable, (gfn >> 3) + 1);
    this.writable[gfn >> 3]! |= 1 << (gfn & 7);
    return true;
  }

  /** paging_mark_pfn_dirty (paging.c lines 264-340): allocate the path, set the bit, count it if new. */
  markPfnDirty(gfn: number): void {
    if (!this.enabled) return;
    const leaf = Math.floor(gfn / LOG_DIRTY_LEAF_PAGES);
    this.top = true;
    this.leaves.add(leaf);
    this.l2Nodes.add(leaf >> 9);
    this.l3Nodes.add(leaf >> 18);
    this.bitmap = grown(this.bitmap, (gfn >> 3) + 1);
    const bit = 1 << (gfn & 7);
    if (!(this.bitmap[gfn >> 3]! & bit)) {
      this.bitmap[gfn >> 3]! |= bit;
      this.dirtyCount++;
    }
  }

  /** Whether pfn `gfn` is p2m_ram_rw while log-dirty is on (its next write goes unseen). */
  isWritable(gfn: number): boolean {
    return this.enabled && testBit(this.writable, gfn);
  }

  /** p2m_change_entry_type_global(d, p2m_ram_rw, p2m_ram_logdirty): every page read-only again. */
  rearm(): void {
    this.writable.fill(0);
  }

  /** Whether a leaf exists (copy_to_guest_offset of it) or not (clear_guest_offset). */
  leafPresent(leaf: number): boolean {
    if (this.leaves.has(leaf)) return true;
    // A test may set bits in `bitmap` directly, without marking: those leaves count as present.
    const from = leaf * LOG_DIRTY_CHUNK_BYTES;
    if (from >= this.bitmap.length) return false;
    return this.bitmap.subarray(from, Math.min(from + LOG_DIRTY_CHUNK_BYTES, this.bitmap.length)).some((b) => b !== 0);
  }

  /** Whether the trie has a top node (log_dirty.top is valid). */
  get allocated(): boolean {
    return this.top || this.bitmap.some((b) => b !== 0);
  }

  /** The leaf's bytes (zeros past the end of `bitmap`). */
  leafBytes(leaf: number, bytes: number): Uint8Array {
    const out = new Uint8Array(bytes);
    const from = leaf * LOG_DIRTY_CHUNK_BYTES;
    if (from < this.bitmap.length) out.set(this.bitmap.subarray(from, Math.min(from + bytes, this.bitmap.length)));
    return out;
  }

  /** clear_page(l1): the leaf stays allocated, all clean. Returns how many bytes had bits. */
  clearLeaf(leaf: number): number {
    const from = leaf * LOG_DIRTY_CHUNK_BYTES;
    if (from >= this.bitmap.length) return 0;
    const end = Math.min(from + LOG_DIRTY_CHUNK_BYTES, this.bitmap.length);
    let had = 0;
    for (let i = from; i < end; i++) if (this.bitmap[i]) had++;
    this.bitmap.fill(0, from, end);
    return had;
  }

  /** Frees one l2 node and its leaves (paging_free_log_dirty_bitmap's inner loop). */
  freeL2Node(key: number): void {
    for (let i2 = 0; i2 < LOGDIRTY_NODE_ENTRIES; i2++) {
      const leaf = key * LOGDIRTY_NODE_ENTRIES + i2;
      if (this.leaves.delete(leaf)) this.clearLeaf(leaf);
    }
    this.l2Nodes.delete(key);
  }

  /** The last step of paging_free_log_dirty_bitmap: the top goes, and with it every bit. */
  freeAll(): void {
    this.top = false;
    this.bitmap.fill(0);
    this.leaves.clear();
    this.l2Nodes.clear();
    this.l3Nodes.clear();
  }
}
