// The mock's event_channel_op: xen/common/event_channel.c do_event_channel_op.

import { decode, encode } from '../../layout.js';
import { DOMID, EVTCHNOP, EVTCHNSTAT } from '../../hypercalls/numbers.js';
import { evtchn_alloc_unbound, evtchn_close, evtchn_send, evtchn_status } from '../../hypercalls/structs.js';
import type { MockHypervisor } from '../hypervisor.js';
import { E, OK, nameOf, dv, type Begin } from './common.js';

export function eventChannelOp(hv: MockHypervisor, args: readonly bigint[], begin: Begin): bigint {
  const cmd = Number(BigInt.asUintN(32, args[0]!));
  const arg = args[1]!;
  const name = `event_channel_op.${nameOf(EVTCHNOP, cmd) ?? cmd}`;
  begin(name);
  const self = (dom: number) => (dom === DOMID.SELF ? 0 : dom);
  switch (cmd) {
    case EVTCHNOP.alloc_unbound: {
      const b = hv.copyFromGuest(name, arg, evtchn_alloc_unbound.size, 'arg1 (struct evtchn_alloc_unbound)');
      if (!b) return E('EFAULT');
      const a = decode(evtchn_alloc_unbound, dv(b));
      const d = hv.domain(self(a.dom));
      if (!d) return E('ESRCH');
      const port = d.freePort();
      if (port < 0) return E('ENOSPC');
      d.evtchns.set(port, { state: { state: 'unbound', remoteDom: self(a.remote_dom) }, vcpu: 0, pending: 0 });
      hv.effect(name, 'evtchn.allocated', { domid: d.domid, port, remoteDom: self(a.remote_dom) });
      encode(evtchn_alloc_unbound, dv(b), 0, { port });
      // "Cleaning up here would be a mess!": the port stays allocated if this copy fails.
      return hv.copyToGuest(name, arg, b, 'arg1 (struct evtchn_alloc_unbound)') ? OK : E('EFAULT');
    }
    case EVTCHNOP.close: {
      const b = hv.copyFromGuest(name, arg, evtchn_close.size, 'arg1 (struct evtchn_close)');
      if (!b) return E('EFAULT');
      const { port } = decode(evtchn_close, dv(b));
      const d = hv.domain(0)!; // closes a port of the calling domain
      if (!d.evtchns.has(port)) return E('EINVAL');
      d.evtchns.delete(port);
      hv.effect(name, 'evtchn.closed', { domid: 0, port });
      return OK;
    }
    case EVTCHNOP.send: {
      const b = hv.copyFromGuest(name, arg, evtchn_send.size, 'arg1 (struct evtchn_send)');
      if (!b) return E('EFAULT');
      const { port } = decode(evtchn_send, dv(b));
      const ch = hv.domain(0)!.evtchns.get(port);
      if (!ch) return E('EINVAL');
      ch.pending++;
      hv.effect(name, 'evtchn.sent', { domid: 0, port });
      return OK;
    }
    case EVTCHNOP.status: {
      const b = hv.copyFromGuest(name, arg, evtchn_status.size, 'arg1 (struct evtchn_status)');
      if (!b) return E('EFAULT');
      const s = decode(evtchn_status, dv(b));
      const d = hv.domain(self(s.dom));
      if (!d) return E('ESRCH');
      if (s.port > d.maxEvtchnPort) return E('EINVAL');
      const ch = d.evtchns.get(s.port);
      const st = ch?.state;
      encode(evtchn_status, dv(b), 0, {
        status: st ? EVTCHNSTAT[st.state] : EVTCHNSTAT.closed,
        vcpu: ch?.vcpu ?? 0,
        remote_dom: st && 'remoteDom' in st ? st.remoteDom : 0,
        remote_port: st && 'remotePort' in st ? st.remotePort : 0,
      });
      return hv.copyToGuest(name, arg, b, 'arg1 (struct evtchn_status)') ? OK : E('EFAULT');
    }
    default:
      return hv.unmodelled(name, `event_channel_op cmd ${cmd}`);
  }
}
