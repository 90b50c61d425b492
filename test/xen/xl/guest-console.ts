// What the xl test guest (xl-guest.c) says on Xen's console, read with xencall's
// sysctl.readconsole. The guest writes to the debug port 0xe9 and Xen logs each line as
// "(dN) xl-guest ..." (xen/arch/x86/hvm/hvm.c, hvm_print_line: guest_printk at XENLOG_G_DEBUG,
// shown with guest_loglvl=all, which run.sh --with-xl sets).

import type { Xencall } from '../../../src/index.js';

type CountKind = 'count' | 'suspending' | 'resumed';
export type GuestEvent = { domid: number; kind: 'started' | 'poweroff' } | { domid: number; kind: CountKind; count: number };

const LINE = /^\(d(\d+)\) xl-guest (started|poweroff|suspending at ([0-9a-f]{8})|resumed at ([0-9a-f]{8})|([0-9a-f]{8}))$/;

export function parseGuestLine(line: string): GuestEvent | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  const domid = Number(m[1]);
  if (m[2] === 'started' || m[2] === 'poweroff') return { domid, kind: m[2] };
  if (m[3]) return { domid, kind: 'suspending', count: parseInt(m[3], 16) };
  if (m[4]) return { domid, kind: 'resumed', count: parseInt(m[4], 16) };
  return { domid, kind: 'count', count: parseInt(m[5]!, 16) };
}

const READ_SIZE = 1 << 16;
const POLL_MS = 200;

export class GuestConsole {
  readonly events: GuestEvent[] = [];
  private partial = '';

  private constructor(
    private readonly xc: Xencall,
    private index: number,
  ) {}

  /** Starts after what Xen's ring holds now (what is there is parsed too). */
  static async open(xc: Xencall): Promise<GuestConsole> {
    // A plain read starts at the oldest byte still in the ring; the index it returns is where
    // the next incremental read goes on (xen/drivers/char/console.c, read_console_ring).
    const first = await xc.sysctl.readconsole({ clear: false, incremental: false, index: 0, size: READ_SIZE });
    const c = new GuestConsole(xc, first.index);
    c.take(first.text);
    await c.poll();
    return c;
  }

  /** Reads what Xen logged since the last read. */
  async poll(): Promise<void> {
    for (;;) {
      const r = await this.xc.sysctl.readconsole({ clear: false, incremental: true, index: this.index, size: READ_SIZE });
      this.index = r.index;
      this.take(r.text);
      if (r.count < READ_SIZE) return;
    }
  }

  private take(text: string) {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop()!;
    for (const line of lines) {
      const e = parseGuestLine(line);
      if (e) this.events.push(e);
    }
  }

  /**
   * The count of the domain's first event of that kind (with a count of at least atLeast),
   * waiting for it; a timeout fails, naming what it waited for and the domain's last lines.
   */
  async waitForCount(domid: number, kind: CountKind, what: string, atLeast = 0, timeoutMs = 60_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.poll();
      const e = this.events.find((ev) => ev.domid === domid && ev.kind === kind && ev.count >= atLeast);
      if (e && 'count' in e) return e.count;
      if (Date.now() > deadline) {
        const seen = this.events.filter((ev) => ev.domid === domid).slice(-5);
        throw new Error(`no ${what} from d${domid} on Xen's console within ${timeoutMs} ms; its last lines: ${JSON.stringify(seen)}`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}
