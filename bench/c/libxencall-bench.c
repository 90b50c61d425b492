/*
 * The C side of `npm run bench:xen`: what the same hypercalls cost through Debian's libxencall,
 * the way libxc issues them, inside dom0. bench/xen.ts spawns this once per round, so its
 * batches interleave with node's in one dom0 run; scripts/bench-xen.sh compiles it on the host
 * (statically, against libxencall.a, into a cache dir; the binary is never committed).
 *
 *   libxencall-bench BATCH LIST_DOMAINS
 *
 * Prints one line per variant: "<variant> <calls> <ns>" (ns for the whole batch; one
 * clock_gettime pair per batch, since a pair costs ~20 us in emulated dom0).
 *
 * Variants:
 *   c-ioctl.xen_version          syscall(SYS_ioctl, privcmd, IOCTL_PRIVCMD_HYPERCALL): no library
 *   c-libxencall.xen_version     xencall2(__HYPERVISOR_xen_version, XENVER_version, 0)
 *   c-libxencall.getdomaininfo   libxc's do_domctl: a buffer from libxencall's cache, the
 *                                struct copied in, xencall1(__HYPERVISOR_domctl), copied out,
 *                                the buffer freed, every call
 *   c-libxencall.getdomaininfo_each   LIST_DOMAINS getdomaininfo calls, one per domain (one item)
 *   c-libxencall.getdomaininfolist    one sysctl getdomaininfolist for LIST_DOMAINS domains
 */
#define __XEN_TOOLS__ 1
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <xencall.h>
#include <xen/xen.h>
#include <xen/domctl.h>
#include <xen/sysctl.h>
#include <xen/version.h>

#define IOCTL_PRIVCMD_HYPERCALL 0x00305000UL

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void report(const char *variant, long calls, uint64_t ns)
{
    printf("%s %ld %llu\n", variant, calls, (unsigned long long)ns);
}

static void die(const char *what)
{
    fprintf(stderr, "libxencall-bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* libxc's do_domctl, reduced: bounce the caller's struct through a hypercall buffer. */
static int do_domctl(xencall_handle *h, struct xen_domctl *d)
{
    struct xen_domctl *b = xencall_alloc_buffer(h, sizeof(*b));
    if (!b)
        return -1;
    memcpy(b, d, sizeof(*b));
    int r = xencall1(h, __HYPERVISOR_domctl, (uint64_t)(uintptr_t)b);
    memcpy(d, b, sizeof(*b));
    xencall_free_buffer(h, b);
    return r;
}

static int getdomaininfo(xencall_handle *h, uint16_t domid, struct xen_domctl_getdomaininfo *out)
{
    struct xen_domctl d;
    memset(&d, 0, sizeof(d));
    d.cmd = XEN_DOMCTL_getdomaininfo;
    d.interface_version = XEN_DOMCTL_INTERFACE_VERSION;
    d.domain = domid;
    int r = do_domctl(h, &d);
    if (r == 0)
        *out = d.u.getdomaininfo;
    return r;
}

/* libxc's xc_domain_getinfolist: one sysctl, the records bounced through a buffer. */
static int getdomaininfolist(xencall_handle *h, uint16_t first, uint32_t max, struct xen_domctl_getdomaininfo *out)
{
    size_t len = max * sizeof(*out);
    struct xen_domctl_getdomaininfo *list = xencall_alloc_buffer(h, len);
    struct xen_sysctl *s = xencall_alloc_buffer(h, sizeof(*s));
    if (!list || !s)
        return -1;
    memset(s, 0, sizeof(*s));
    s->cmd = XEN_SYSCTL_getdomaininfolist;
    s->interface_version = XEN_SYSCTL_INTERFACE_VERSION;
    s->u.getdomaininfolist.first_domain = first;
    s->u.getdomaininfolist.max_domains = max;
    set_xen_guest_handle(s->u.getdomaininfolist.buffer, list);
    int r = xencall1(h, __HYPERVISOR_sysctl, (uint64_t)(uintptr_t)s);
    if (r == 0) {
        r = (int)s->u.getdomaininfolist.num_domains;
        memcpy(out, list, r * sizeof(*out));
    }
    xencall_free_buffer(h, s);
    xencall_free_buffer(h, list);
    return r;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: libxencall-bench BATCH LIST_DOMAINS\n");
        return 2;
    }
    long batch = atol(argv[1]);
    uint32_t listn = (uint32_t)atol(argv[2]);
    if (batch < 1 || listn < 1 || listn > 256) {
        fprintf(stderr, "libxencall-bench: BATCH >= 1, 1 <= LIST_DOMAINS <= 256\n");
        return 2;
    }
    xencall_handle *h = xencall_open(NULL, 0);
    if (!h)
        die("xencall_open");
    int fd = open("/dev/xen/privcmd", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        die("open /dev/xen/privcmd");

    struct xen_domctl_getdomaininfo info, *infos = calloc(listn, sizeof(*infos));
    uint16_t *ids = calloc(listn, sizeof(*ids));
    if (!infos || !ids)
        die("calloc");
    /* The ids to visit one by one: whatever domains exist, as the list call finds them. */
    int found = getdomaininfolist(h, 0, listn, infos);
    if (found < 1)
        die("getdomaininfolist");
    for (int i = 0; i < found; i++)
        ids[i] = infos[i].domain;
    printf("# domains %d buffers_never_fault %d\n", found, xencall_buffers_never_fault(h));

    long warm = batch / 10 + 1;
    uint64_t t0, t1;
    long i;

    /* ---- xen_version, no buffer ---- */
    unsigned long long call[6] = { __HYPERVISOR_xen_version, XENVER_version, 0, 0, 0, 0 };
    for (i = 0; i < warm; i++)
        syscall(SYS_ioctl, fd, IOCTL_PRIVCMD_HYPERCALL, call);
    t0 = now_ns();
    for (i = 0; i < batch; i++)
        if (syscall(SYS_ioctl, fd, IOCTL_PRIVCMD_HYPERCALL, call) < 0)
            die("ioctl xen_version");
    t1 = now_ns();
    report("c-ioctl.xen_version", batch, t1 - t0);

    for (i = 0; i < warm; i++)
        xencall2(h, __HYPERVISOR_xen_version, XENVER_version, 0);
    t0 = now_ns();
    for (i = 0; i < batch; i++)
        if (xencall2(h, __HYPERVISOR_xen_version, XENVER_version, 0) < 0)
            die("xencall2 xen_version");
    t1 = now_ns();
    report("c-libxencall.xen_version", batch, t1 - t0);

    /* ---- getdomaininfo(0), a domctl through a buffer ---- */
    for (i = 0; i < warm; i++)
        getdomaininfo(h, 0, &info);
    t0 = now_ns();
    for (i = 0; i < batch; i++)
        if (getdomaininfo(h, 0, &info) != 0)
            die("getdomaininfo");
    t1 = now_ns();
    report("c-libxencall.getdomaininfo", batch, t1 - t0);

    /* ---- every domain: one call per item against one list call ---- */
    long lbatch = batch / found + 1;
    for (i = 0; i < warm / found + 1; i++)
        for (int k = 0; k < found; k++)
            getdomaininfo(h, ids[k], &info);
    t0 = now_ns();
    for (i = 0; i < lbatch; i++)
        for (int k = 0; k < found; k++)
            if (getdomaininfo(h, ids[k], &info) != 0)
                die("getdomaininfo (each)");
    t1 = now_ns();
    report("c-libxencall.getdomaininfo_each", lbatch, t1 - t0);

    for (i = 0; i < warm / found + 1; i++)
        getdomaininfolist(h, 0, listn, infos);
    t0 = now_ns();
    for (i = 0; i < lbatch; i++)
        if (getdomaininfolist(h, 0, listn, infos) != found)
            die("getdomaininfolist");
    t1 = now_ns();
    report("c-libxencall.getdomaininfolist", lbatch, t1 - t0);

    close(fd);
    xencall_close(h);
    return 0;
}
