// The client a request names behind trusted proxies: RFC 7239 `Forwarded` (its `for=` nodes) or,
// without one, `X-Forwarded-For`. The hops are walked from the right, the nearest first: each trusted
// one hands over to the hop it names, and the first untrusted one is the client. A hop that names no
// address (`unknown`, an obfuscated `_id`, anything malformed) ends the walk at the last good hop,
// since nothing it says can be checked. Written here, not taken from proxy-addr: that one keeps a
// malformed entry as the client, reads no `Forwarded` and no ports.
import net from 'node:net';
import { canonicalAddress, isTrusted } from './address-info.ts';

type Headers = Record<string, string | string[] | undefined>;

/**
 * The client of a request that came from `peer`: `peer` itself unless it is trusted; then the
 * rightmost untrusted hop the headers name, or the leftmost when all are trusted.
 */
export function forwardedClient(headers: Headers, peer: string, trusted: net.BlockList): string {
  let client = canonicalAddress(peer);
  if (!isTrusted(trusted, client)) return client;
  const hops = forwardedHops(headers);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i];
    if (hop === undefined) return client;
    client = hop;
    if (!isTrusted(trusted, client)) return client;
  }
  return client;
}

/** The addresses the headers name, left to right; undefined for a hop that names none. */
export function forwardedHops(headers: Headers): (string | undefined)[] {
  const forwarded = joined(headers.forwarded);
  if (forwarded !== undefined) return splitOutsideQuotes(forwarded, ',').map(forNode);
  const xff = joined(headers['x-forwarded-for']);
  if (xff === undefined) return [];
  return xff.split(',').map((entry) => nodeAddress(entry.trim()));
}

function joined(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value.join(',') : value;
  return text === undefined || text.trim() === '' ? undefined : text;
}

/** The address of one `Forwarded` element's `for=` parameter. */
function forNode(element: string): string | undefined {
  for (const pair of splitOutsideQuotes(element, ';')) {
    const equals = pair.indexOf('=');
    if (equals === -1 || pair.slice(0, equals).trim().toLowerCase() !== 'for') continue;
    return nodeAddress(unquote(pair.slice(equals + 1).trim()));
  }
  return undefined;
}

function unquote(value: string): string | undefined {
  if (!value.startsWith('"')) return value;
  if (value.length < 2 || !value.endsWith('"')) return undefined;
  return value.slice(1, -1).replace(/\\(.)/g, '$1');
}

/** An IP address, without its port or brackets, in canonical form; undefined for anything else. */
function nodeAddress(node: string | undefined): string | undefined {
  if (node === undefined) return undefined;
  let address = node;
  if (node.startsWith('[')) {
    const close = node.indexOf(']');
    const rest = node.slice(close + 1);
    if (close === -1 || (rest !== '' && !isPort(rest))) return undefined;
    address = node.slice(1, close);
    if (!net.isIPv6(address)) return undefined;
  } else if (/^\d+\.\d+\.\d+\.\d+:/.test(node)) {
    const colon = node.indexOf(':');
    if (!isPort(node.slice(colon))) return undefined;
    address = node.slice(0, colon);
  }
  return net.isIP(address) === 0 ? undefined : canonicalAddress(address);
}

/** `:` and a port number. */
function isPort(text: string): boolean {
  return /^:\d{1,5}$/.test(text) && Number(text.slice(1)) <= 65535;
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '\\' && quoted) i++;
    else if (char === '"') quoted = !quoted;
    else if (char === separator && !quoted) {
      parts.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(text.slice(start).trim());
  return parts;
}
