// Table rows for __HYPERVISOR_physdev_op (xen/arch/x86/physdev.c do_physdev_op, falling back to
// xen/drivers/pci/physdev.c pci_physdev_op). Nearly every sub-op copies its struct in before
// acting and copies nothing back; map_pirq and get_free_pirq copy the result out after
// allocating, and map_pirq even on failure.

import { defineRow, type Citation, subopRows } from '../row.js';
import { PHYSDEVOP } from '../numbers.js';
import { physdev_map_pirq } from '../structs.js';
import { MAP_PIRQ_TYPE } from './constants.js';

const DO_PHYSDEV_OP: Citation = { file: 'xen/arch/x86/physdev.c', function: 'do_physdev_op' };
const PCI_PHYSDEV_OP: Citation = { file: 'xen/drivers/pci/physdev.c', function: 'pci_physdev_op' };

const physdev = subopRows('physdev_op', PHYSDEVOP);

/** The common shape: the struct is copied in before the effect and nothing is copied back. */
const entryOnly = <Op extends keyof typeof PHYSDEVOP & string>(op: Op, effect: string, source: readonly Citation[] = [DO_PHYSDEV_OP]) =>
  physdev(op, {
    verdict: 'safe',
    reason: `The struct is copied in before ${effect} and nothing is copied back, so an EFAULT means nothing happened.`,
    source,
  });

export const PHYSDEV_OP_ROWS = [
  physdev('IRQ_UNMASK_NOTIFY', {
    verdict: 'safe',
    faults: 'no-pointer',
    reason: 'Takes no argument (it unmasks the caller\'s pirqs whose event channels are unmasked, idempotently), so it cannot fault.',
    source: [DO_PHYSDEV_OP],
  }),
  physdev('irq_status_query', {
    verdict: 'safe',
    reason: 'Read-only: the flags are computed and the struct copied back.',
    source: [DO_PHYSDEV_OP],
  }),
  entryOnly('set_iopl', 'the calling vcpu\'s IOPL is set'),
  entryOnly('set_iobitmap', 'the calling vcpu\'s I/O bitmap handle is recorded (the bitmap itself is read later, at emulation time)'),
  physdev('apic_read', {
    verdict: 'safe',
    reason: 'Read-only: the IO-APIC register is read and the struct copied back.',
    source: [DO_PHYSDEV_OP],
  }),
  entryOnly('apic_write', 'ioapic_guest_write()'),
  physdev('alloc_irq_vector', {
    verdict: 'safe',
    reason: 'A dummy in 4.17: the vector is set to the irq number and copied back; nothing is allocated.',
    source: [DO_PHYSDEV_OP],
  }),
  physdev('free_irq_vector', {
    verdict: 'safe',
    faults: 'no-pointer',
    reason: 'Not implemented: pci_physdev_op returns -ENOSYS without reading the argument, so it cannot fault.',
    source: [DO_PHYSDEV_OP, PCI_PHYSDEV_OP],
  }),
  entryOnly('eoi', 'the pirq is EOIed (and its port unmasked when auto-unmask is on)'),
  defineRow({
    name: 'physdev_op.map_pirq',
    hypercall: 'physdev_op',
    subop: PHYSDEVOP.map_pirq,
    layout: physdev_map_pirq,
    verdict: 'conditional',
    condition: { text: 'unsafe unless type is MAP_PIRQ_TYPE_GSI (1)', unsafeWhen: (a) => a.type !== MAP_PIRQ_TYPE.GSI },
    faults: 'copies',
    longRunning: false,
    reason:
      'The pirq (and for MSI the irq) is allocated and mapped before the struct is copied back, unconditionally. For a GSI a re-issue finds the existing mapping and returns the same pirq. For MSI, MSI_SEG and MULTI_MSI each attempt creates a fresh irq: a re-issue leaks the first (or, with an explicit pirq, returns success while leaking the second irq).',
    source: [DO_PHYSDEV_OP, { file: 'xen/arch/x86/physdev.c', function: 'physdev_map_pirq' }, { file: 'xen/arch/x86/irq.c', function: 'allocate_and_map_msi_pirq' }],
    recovery:
      'MSI: pass an explicit pirq of your choosing instead of -1; after an EFAULT unmap_pirq that pirq (-EINVAL "not mapped" is fine) and map again. With pirq = -1 the leaked pirq cannot be found by any hypercall.',
    verified: true,
  }),
  entryOnly('unmap_pirq', 'physdev_unmap_pirq()', [DO_PHYSDEV_OP, { file: 'xen/arch/x86/physdev.c', function: 'physdev_unmap_pirq' }]),
  entryOnly('manage_pci_add', 'pci_add_device()'),
  entryOnly('manage_pci_remove', 'pci_remove_device()'),
  entryOnly('pirq_eoi_gmfn_v1', 'the EOI bitmap frame is mapped'),
  entryOnly('restore_msi', 'the device\'s MSI state is restored'),
  entryOnly('manage_pci_add_ext', 'pci_add_device()'),
  entryOnly('setup_gsi', 'mp_register_gsi()'),
  physdev('get_free_pirq', {
    verdict: 'unsafe',
    reason: 'A pirq of the caller\'s own domain is reserved before the struct with it is copied back; a re-issue reserves another and the first is lost.',
    source: [DO_PHYSDEV_OP],
    recovery: 'None clean: no hypercall lists reserved pirqs. Accept the leak (the pirq space is large); a toolstack normally never issues this op.',
  }),
  entryOnly('pci_mmcfg_reserved', 'pci_mmcfg_reserved()'),
  physdev('pci_device_add', {
    verdict: 'safe',
    reason: 'The struct and, with XEN_PCI_DEV_PXM, the optional proximity array are copied in before pci_add_device(); nothing is copied back.',
    source: [PCI_PHYSDEV_OP],
  }),
  entryOnly('pci_device_remove', 'pci_remove_device()', [PCI_PHYSDEV_OP]),
  entryOnly('restore_msi_ext', 'the device\'s MSI state is restored'),
  entryOnly('pirq_eoi_gmfn_v2', 'the EOI bitmap frame is mapped'),
  entryOnly('dbgp_op', 'the EHCI debug port op', [DO_PHYSDEV_OP, { file: 'xen/drivers/char/ehci-dbgp.c', function: 'dbgp_op' }]),
  entryOnly('prepare_msix', 'pci_prepare_msix()'),
  entryOnly('release_msix', 'pci_prepare_msix(..., true)'),
];
