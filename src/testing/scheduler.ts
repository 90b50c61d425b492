// What the mock's HVM vcpus run, and when. A domain's vcpu 0 runs while the domain is neither
// paused (by the controller, or by Xen itself for a log-dirty op) nor dying nor shut down, and
// the vcpu is up (a CPU record was loaded: hvm_load_cpu_ctxt clears _VPF_down). When it first
// runs after a CPU record was loaded, the mock looks at what it would execute: the test guest's
// image (test-guest-model.ts) gets the JS model of that program; anything else runs "doing
// nothing" (no memory writes).
//
// Time: JavaScript runs one thing at a time, so a guest's iterations happen between the mock's
// hypercalls, never inside one. Each running test guest does `guestIterationsPerHypercall`
// iterations before every hypercall the mock handles (time passed since the last one), and one
// every `guestTickMs` on an unref'd timer while any test guest runs (time passing while the
// caller waits, e.g. in waitForProgress). hv.runGuests(n) runs n iterations on demand, for
// tests that want exact counts (then set guestTickMs: 0 and guestIterationsPerHypercall: 0).

import type { MockHypervisor } from './hypervisor.js';
import { MockTestGuest, recogniseTestGuest } from './test-guest-model.js';
import type { MockDomain } from './world.js';

export type GuestProgram = MockTestGuest | 'idle';

export class GuestScheduler {
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly hv: MockHypervisor,
    readonly iterationsPerHypercall: number,
    readonly tickMs: number,
  ) {}

  /** Whether vcpu 0 of `d` is running now. */
  static running(d: MockDomain): boolean {
    return d.hvm && !d.dying && !d.paused && d.shutdownReason === null && d.vcpus[0]?.online === true;
  }

  /** The program vcpu 0 of a running domain executes, decided on its first run after a context load. */
  private program(d: MockDomain): GuestProgram {
    if (d.guestProgram === undefined) {
      if (recogniseTestGuest(d)) {
        d.guestProgram = new MockTestGuest(d);
        // hvm_print_line: a line on port 0xe9 reaches Xen's console as "(dN) ..." (guest_loglvl=all).
        this.hv.console.write(`(d${d.domid}) ${MockTestGuest.banner}\n`);
      } else {
        d.guestProgram = 'idle';
      }
    }
    return d.guestProgram;
  }

  /** Runs `iterations` passes of every running test guest; returns how many guests ran. */
  run(iterations: number): number {
    let ran = 0;
    for (const d of this.hv.domains.values()) {
      if (!GuestScheduler.running(d)) continue;
      const p = this.program(d);
      if (p === 'idle') continue;
      for (let i = 0; i < iterations && GuestScheduler.running(d); i++) p.iteration();
      ran++;
    }
    return ran;
  }

  /** Before a hypercall: the time since the last one. */
  beforeHypercall(): void {
    if (this.iterationsPerHypercall > 0) this.run(this.iterationsPerHypercall);
  }

  /** After a hypercall: keep the timer on exactly while some test guest runs. */
  update(): void {
    const on = this.tickMs > 0 && this.anyRunning();
    if (on && this.timer === null) {
      this.timer = setInterval(() => {
        if (this.run(1) === 0) this.stop();
      }, this.tickMs);
      // A running guest must not keep the process alive.
      this.timer.unref();
    } else if (!on) {
      this.stop();
    }
  }

  private stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private anyRunning(): boolean {
    for (const d of this.hv.domains.values()) if (GuestScheduler.running(d) && this.program(d) !== 'idle') return true;
    return false;
  }
}
