/*
 * The smallest PVH guest that Xen's own toolstack can save, restore and migrate: the guest of the
 * xl checks (test/xen/xl/xl.test.ts). Built on the host by scripts/build-xl-guest.sh (dom0 has no
 * compiler); 32-bit, freestanding, against Debian's Xen public headers (libxen-dev).
 *
 * What it does:
 * - Ticks every TICK_NS: counts in its own memory and writes the count into DIRTY_PAGES pages,
 *   so that a live migration has pages to send again. Between ticks it blocks in Xen
 *   (SCHEDOP_poll with a timeout), so the emulated machine's time goes to dom0, not to a spin.
 * - At every 256th tick prints "xl-guest <count, 8 hex digits>" on the debug port 0xe9, which
 *   Xen logs as "(dN) xl-guest 00000300" with guest_loglvl=all. The count lives in guest memory:
 *   a guest that was saved and restored, or migrated, goes on from where it stopped.
 * - Answers the toolstack's requests in xenstore's control/shutdown. libxl suspends a PVH guest
 *   only through the guest: it writes "suspend" there and waits up to 60 s for the guest to
 *   acknowledge (any other value) and then to shut itself down with SHUTDOWN_suspend
 *   (tools/libs/light/libxl_dom_suspend.c, domain_suspend_callback_common and
 *   domain_suspend_common_pvcontrol_suspending; libxl_domain.c, libxl__domain_pvcontrol). A guest
 *   without a xenstore client cannot be saved or migrated by xl at all.
 *
 * Xen enters it at the XEN_ELFNOTE_PHYS32_ENTRY address in 32-bit flat protected mode with paging
 * and interrupts off (docs/misc/pvh.pandoc); that note alone makes libelf accept the image as PVH
 * (xen/common/libelf/libelf-dominfo.c, elf_xen_note_check). With paging off, guest-physical
 * addresses are pointers: the xenstore ring is used where HVM_PARAM_STORE_PFN says it is.
 */
#include <stdint.h>
/*
 * Without this the headers give an interface older than 3.2.2: __HYPERVISOR_sched_op and
 * event_channel_op then name the old "_compat" hypercalls (6 and 16), which an HVM/PVH guest
 * may not make (xen/include/public/xen.h, xen-compat.h).
 */
#define __XEN_INTERFACE_VERSION__ __XEN_LATEST_INTERFACE_VERSION__
#include <xen/xen.h>
#include <xen/sched.h>
#include <xen/memory.h>
#include <xen/event_channel.h>
#include <xen/hvm/hvm_op.h>
#include <xen/hvm/params.h>
#include <xen/io/xs_wire.h>
#include <xen/elfnote.h>

#define DIRTY_PAGES 64
#define PRINT_MASK 0xffu /* a line every 256 ticks */
#define TICK_NS 2000000ull /* the guest sleeps this long between ticks */
#define DEBUG_PORT 0xe9
#define PAGE_SIZE 4096

uint8_t xl_guest_stack[PAGE_SIZE] __attribute__((aligned(16), used));
/* Xen writes a hypercall stub per hypercall (32 bytes each) into this page (see init_hypercalls). */
static uint8_t hypercall_page[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static volatile uint32_t counter __attribute__((aligned(PAGE_SIZE)));
/* The frame Xen's shared_info page is mapped at (XENMEM_add_to_physmap): its vcpu time. */
static volatile struct shared_info shared __attribute__((aligned(PAGE_SIZE)));
static volatile uint32_t pages[DIRTY_PAGES][PAGE_SIZE / 4] __attribute__((aligned(PAGE_SIZE)));

#define STR_(x) #x
#define STR(x) STR_(x)
/*
 * The note the PVH loader looks for (an SHT_NOTE section, so the linker makes a PT_NOTE for it):
 * name "Xen", type PHYS32_ENTRY, the 32-bit entry address. Then the entry: a stack, and C.
 */
__asm__(".section .note.Xen, \"a\", @note\n"
        "  .balign 4\n"
        "  .long 4, 4, " STR(XEN_ELFNOTE_PHYS32_ENTRY) "\n"
        "  .asciz \"Xen\"\n"
        "  .long _start\n"
        ".text\n"
        ".globl _start\n"
        "_start:\n"
        "  mov $xl_guest_stack + " STR(PAGE_SIZE) ", %esp\n"
        "  call guest_main\n"
        "1: hlt\n"
        "  jmp 1b\n");

void guest_main(void);

#define barrier() __asm__ __volatile__("" ::: "memory")
#define mb() __asm__ __volatile__("mfence" ::: "memory")

static void outb(uint8_t v) { __asm__ __volatile__("outb %0, %1" ::"a"(v), "Nd"((uint16_t)DEBUG_PORT)); }

static void print(const char *s)
{
    while (*s) outb((uint8_t)*s++);
}

static void print_hex(uint32_t v)
{
    for (int shift = 28; shift >= 0; shift -= 4) {
        unsigned d = (v >> shift) & 0xf;
        outb((uint8_t)(d < 10 ? '0' + d : 'a' + d - 10));
    }
}

static void cpuid(uint32_t leaf, uint32_t r[4])
{
    __asm__ __volatile__("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "0"(leaf), "2"(0));
}

/*
 * Xen's CPUID leaves sit at 0x40000000 or a multiple of 0x100 above (when another hypervisor's
 * come first); leaf base+2 names the MSR that makes Xen fill a page with hypercall stubs
 * (xen/arch/x86/cpuid.c, cpuid_hypervisor_leaves; docs: "Hypercall page").
 */
static int init_hypercalls(void)
{
    for (uint32_t base = 0x40000000; base < 0x40010000; base += 0x100) {
        uint32_t r[4];
        cpuid(base, r);
        if (r[1] == 0x566e6558 && r[2] == 0x65584d4d && r[3] == 0x4d4d566e) { /* "XenVMMXenVMM" */
            cpuid(base + 2, r);
            uint32_t msr = r[1];
            uint32_t addr = (uint32_t)hypercall_page;
            __asm__ __volatile__("wrmsr" ::"c"(msr), "a"(addr), "d"(0) : "memory");
            return 0;
        }
    }
    return -1;
}

/* 32-bit HVM hypercall ABI: number via the stub's slot, arguments in ebx, ecx; result in eax. */
static long hypercall2(unsigned nr, uint32_t a1, uint32_t a2)
{
    long ret;
    uint32_t clobber_b, clobber_c;
    __asm__ __volatile__("call *%[entry]"
                         : "=a"(ret), "=b"(clobber_b), "=c"(clobber_c)
                         : [entry] "D"(hypercall_page + nr * 32), "1"(a1), "2"(a2)
                         : "memory", "edx", "esi");
    return ret;
}

static uint64_t get_param(uint32_t index)
{
    struct xen_hvm_param p = { .domid = DOMID_SELF, .index = index };
    if (hypercall2(__HYPERVISOR_hvm_op, HVMOP_get_param, (uint32_t)&p) != 0) return 0;
    return p.value;
}

/* ---------------------------------------------------------------- time and sleep */

static int have_clock;

/* Maps shared_info over our `shared` page; again after a resume (a new domain has its own). */
static void map_shared_info(void)
{
    struct xen_add_to_physmap xatp = {
        .domid = DOMID_SELF,
        .space = XENMAPSPACE_shared_info,
        .idx = 0,
        .gpfn = (uint32_t)&shared >> 12,
    };
    have_clock = hypercall2(__HYPERVISOR_memory_op, XENMEM_add_to_physmap, (uint32_t)&xatp) == 0;
}

static uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* Xen's system time in ns, as xen.h's vcpu_time_info comment says to compute it. */
static uint64_t xen_now(void)
{
    volatile struct vcpu_time_info *t = &shared.vcpu_info[0].time;
    uint32_t version;
    uint64_t now;
    do {
        version = t->version;
        barrier();
        uint64_t delta = rdtsc() - t->tsc_timestamp;
        int8_t shift = t->tsc_shift;
        delta = shift >= 0 ? delta << shift : delta >> -shift;
        uint32_t mul = t->tsc_to_system_mul;
        /* (delta * mul) >> 32 without a 96-bit product. */
        now = t->system_time + (((delta & 0xffffffffu) * mul) >> 32) + (delta >> 32) * mul;
        barrier();
    } while ((version & 1) || version != t->version);
    return now;
}

/*
 * Blocks until Xen's clock passes the deadline or an event arrives for us (with no ports
 * named, any event channel notification wakes a polling vcpu: xen/common/sched/core.c, do_poll,
 * and xen/common/event_channel.c, evtchn_port_set_pending). Without a clock it returns at once.
 */
static void sleep_until(uint64_t deadline)
{
    if (!have_clock) return;
    struct sched_poll poll = { .nr_ports = 0, .timeout = deadline };
    hypercall2(__HYPERVISOR_sched_op, SCHEDOP_poll, (uint32_t)&poll);
}

/* ---------------------------------------------------------------- xenstore (xs_wire.h) */

static volatile struct xenstore_domain_interface *xs;
static uint32_t xs_port;
static uint32_t xs_req_id;
static int watch_fired;

static void xs_notify(void)
{
    struct evtchn_send send = { .port = xs_port };
    hypercall2(__HYPERVISOR_event_channel_op, EVTCHNOP_send, (uint32_t)&send);
}

static void xs_write_bytes(const void *data, uint32_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        uint32_t prod = xs->req_prod;
        mb();
        uint32_t space = XENSTORE_RING_SIZE - (prod - xs->req_cons);
        if (space == 0) { xs_notify(); continue; }
        uint32_t off = MASK_XENSTORE_IDX(prod);
        uint32_t n = len < space ? len : space;
        if (n > XENSTORE_RING_SIZE - off) n = XENSTORE_RING_SIZE - off;
        for (uint32_t i = 0; i < n; i++) xs->req[off + i] = (char)p[i];
        mb(); /* the bytes before the index that publishes them */
        xs->req_prod = prod + n;
        p += n;
        len -= n;
    }
}

/* Reads len bytes of responses (into out, or dropped when out is 0), waiting for them. */
static void xs_read_bytes(void *out, uint32_t len)
{
    uint8_t *p = out;
    while (len > 0) {
        uint32_t cons = xs->rsp_cons;
        uint32_t avail = xs->rsp_prod - cons;
        mb();
        if (avail == 0) continue;
        uint32_t off = MASK_XENSTORE_IDX(cons);
        uint32_t n = len < avail ? len : avail;
        if (n > XENSTORE_RING_SIZE - off) n = XENSTORE_RING_SIZE - off;
        for (uint32_t i = 0; i < n; i++) {
            if (p) *p++ = (uint8_t)xs->rsp[off + i];
        }
        mb(); /* done with the bytes before handing the space back */
        xs->rsp_cons = cons + n;
        xs_notify();
        len -= n;
    }
}

/* Reads one message; a body longer than max is cut (and the rest consumed); returns the type. */
static uint32_t xs_read_msg(char *body, uint32_t max, uint32_t *body_len)
{
    struct xsd_sockmsg hdr;
    xs_read_bytes(&hdr, sizeof(hdr));
    uint32_t keep = hdr.len < max ? hdr.len : max;
    xs_read_bytes(body, keep);
    xs_read_bytes(0, hdr.len - keep);
    *body_len = keep;
    if (hdr.type == XS_WATCH_EVENT) watch_fired = 1;
    return hdr.type;
}

static uint32_t str_len(const char *s)
{
    uint32_t n = 0;
    while (s[n]) n++;
    return n;
}

/*
 * One request and its reply: parts are sent back to back (each with its NUL when with_nul says
 * so); watch events that arrive first are noted and skipped. Returns the reply's type.
 */
static uint32_t xs_request(uint32_t type, const char *const *parts, const int *with_nul, int n, char *reply, uint32_t max, uint32_t *reply_len)
{
    struct xsd_sockmsg hdr = { .type = type, .req_id = ++xs_req_id, .tx_id = 0, .len = 0 };
    for (int i = 0; i < n; i++) hdr.len += str_len(parts[i]) + (with_nul[i] ? 1 : 0);
    xs_write_bytes(&hdr, sizeof(hdr));
    for (int i = 0; i < n; i++) xs_write_bytes(parts[i], str_len(parts[i]) + (with_nul[i] ? 1 : 0));
    xs_notify();
    for (;;) {
        uint32_t t = xs_read_msg(reply, max, reply_len);
        if (t != XS_WATCH_EVENT) return t;
    }
}

static const char shutdown_node[] = "control/shutdown";

static void xs_connect(void)
{
    map_shared_info();
    xs = (volatile struct xenstore_domain_interface *)(uint32_t)(get_param(HVM_PARAM_STORE_PFN) << 12);
    xs_port = (uint32_t)get_param(HVM_PARAM_STORE_EVTCHN);
    /* The first event comes at once, for the node as it is; later ones on every write. */
    const char *parts[] = { shutdown_node, "xl-guest" };
    const int nul[] = { 1, 1 };
    char reply[32];
    uint32_t len;
    xs_request(XS_WATCH, parts, nul, 2, reply, sizeof(reply), &len);
}

static int streq(const char *a, uint32_t alen, const char *b)
{
    uint32_t blen = str_len(b);
    if (alen != blen) return 0;
    for (uint32_t i = 0; i < alen; i++) if (a[i] != b[i]) return 0;
    return 1;
}

static void shutdown_self(uint32_t reason)
{
    struct sched_shutdown s = { .reason = reason };
    hypercall2(__HYPERVISOR_sched_op, SCHEDOP_shutdown, (uint32_t)&s);
}

/* Called when a watch event came: what does the toolstack ask for? */
static void answer_control(void)
{
    watch_fired = 0;
    const char *parts[] = { shutdown_node };
    const int nul[] = { 1 };
    char value[32];
    uint32_t len;
    if (xs_request(XS_READ, parts, nul, 1, value, sizeof(value), &len) != XS_READ) return; /* XS_ERROR: no node */
    int suspend = streq(value, len, "suspend");
    int poweroff = streq(value, len, "poweroff") || streq(value, len, "halt");
    if (!suspend && !poweroff) return;

    /* Acknowledge by clearing the node, as libxl waits for (any value but the request). */
    const char *ack[] = { shutdown_node, "" };
    const int ack_nul[] = { 1, 0 };
    char reply[32];
    xs_request(XS_WRITE, ack, ack_nul, 2, reply, sizeof(reply), &len);

    if (poweroff) {
        print("xl-guest poweroff\n");
        shutdown_self(SHUTDOWN_poweroff);
        return;
    }
    print("xl-guest suspending at ");
    print_hex(counter);
    print("\n");
    /*
     * Returns in the same domain if the suspend was cancelled, or in a new one after a restore
     * or a migration: there the store ring was zeroed and the event channel is new
     * (tools/libs/guest/xg_sr_restore_x86_hvm.c, handle_hvm_params), our watch belonged to the
     * old domain, and so did the shared_info mapping; connect again either way.
     */
    shutdown_self(SHUTDOWN_suspend);
    xs_connect();
    print("xl-guest resumed at ");
    print_hex(counter);
    print("\n");
}

void guest_main(void)
{
    if (init_hypercalls() != 0) {
        print("xl-guest: no Xen CPUID leaves\n");
        return;
    }
    xs_connect();
    print(have_clock ? "xl-guest started\n" : "xl-guest started (no clock: spinning)\n");
    uint64_t next = have_clock ? xen_now() : 0;
    for (;;) {
        uint32_t c = ++counter;
        for (int i = 0; i < DIRTY_PAGES; i++) pages[i][0] = c;
        if ((c & PRINT_MASK) == 0) {
            print("xl-guest ");
            print_hex(c);
            print("\n");
        }
        if (watch_fired || xs->rsp_prod != xs->rsp_cons) {
            uint32_t len;
            char body[64];
            while (xs->rsp_prod != xs->rsp_cons) xs_read_msg(body, sizeof(body), &len);
            if (watch_fired) {
                answer_control();
                if (have_clock) next = xen_now(); /* a new domain's clock starts elsewhere */
            }
        }
        if (have_clock) {
            next += TICK_NS;
            uint64_t now = xen_now();
            if (next < now) next = now; /* behind (descheduled): no burst to catch up */
            sleep_until(next);
        }
        barrier();
    }
}
