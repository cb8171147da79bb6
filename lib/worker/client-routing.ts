// ip-hash per request behind a trusted reverse proxy: one of its connections carries many clients'
// requests, so each request goes to the worker its client (as the forwarding headers name it) hashes
// to, by the same rendezvous ranking the main thread uses for connections. The main thread tells the
// members whenever they change; until it has, every request is served here.
import type http from 'node:http';
import type net from 'node:net';
import { pickByKey } from '../balancers/ip-hash.ts';
import { addressInfoOf, clientKey, isTrusted, storedAddressInfo } from '../protocol/address-info.ts';
import { forwardedClient } from '../protocol/forwarded.ts';
import type { Member } from '../protocol/messages.ts';

let members: readonly Member[] = [];

export function setMembers(value: readonly Member[]): void {
  members = value;
}

/** The worker that serves `req`'s client; undefined for a request that did not come from a trusted proxy. */
export function clientRouter(trustProxy: net.BlockList, ipv6PrefixBits: number) {
  return (req: http.IncomingMessage): number | undefined => {
    const peer = (storedAddressInfo(req.socket) ?? addressInfoOf(req.socket))?.remote.address;
    if (peer === undefined || !isTrusted(trustProxy, peer)) return undefined;
    const client = forwardedClient(req.headers, peer, trustProxy);
    return pickByKey(members, clientKey(client, ipv6PrefixBits))?.id;
  };
}
