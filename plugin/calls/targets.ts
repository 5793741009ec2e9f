/**
 * Where the server may be sent: no stream URL, hook URL or SIP field may turn it against its own network.
 *
 * - Never, whoever asks: link-local addresses and cloud metadata services (lib/forbidden-address.ts),
 *   checked on every address a name resolves to (a name may resolve to several; one bad one is enough).
 * - An output (RTMP/SRT) never at this server's own listening ports on this host (REST, the media leg's
 *   SIP, RTP, the PBX's ARI/AMI when local): that would be a way to poke at them from outside.
 * - A SIP target (sipDomain, sipOutboundProxy, a callee URI's host) never at the PBX's own SIP address or
 *   at the app's media-leg UAS unless ALLOW_SELF_SIP_TARGETS: a call there lands in the PBX's own dialplan.
 * - SIP_ALLOWED_DOMAINS, when set, lists every SIP host a call may go to.
 * - A sipLogin or sipAuthenticationName that names one of the PBX's own PJSIP objects is refused.
 *
 * Private ranges and loopback at other ports stay allowed: a PBX admin's servers are often there.
 * Checked when a request arrives (a 400 naming the field) and again by the adapters at each connect
 * (DNS may have changed): `connectAddress` returns the address that was checked, to connect to it.
 */
import type { Config } from '../config.js';
import { canonicalIp, forbiddenAddress, forbiddenHost, isLocalName, isLoopback, isUnspecified, parseIp } from '../lib/forbidden-address.js';
import { hostAllowed } from '../lib/host-list.js';
import { parseHostPort } from '../rtmp/url.js';
import { InvalidError, UnavailableError } from './errors.js';
import type { HostResolver, Pbx } from './ports.js';
import type { StartupRequest } from './types.js';

/** SIP's port when none is given. */
const SIP_PORT = 5060;

/** A target refused at connect time (adapters show it as the connect error's reason). */
export class TargetRefusedError extends Error {
  override readonly name = 'TargetRefusedError';
  readonly code = 'EFORBIDDEN';
}

export interface OutboundTargetsOptions {
  config: Config;
  resolver: HostResolver;
  /** Is this one of this server's own listening ports (TCP or UDP)? Asked at check time: a port 0 setting is known once bound. */
  ownPort: (port: number) => boolean;
  /** For the sipLogin check; without `sipObjectsNamed` the check is skipped. */
  pbx?: Pbx;
}

export class OutboundTargets {
  constructor(private readonly o: OutboundTargetsOptions) {}

  /** Is this address this host (loopback, 0.0.0.0, one of its interfaces)? */
  private isHere(addr: string): boolean {
    if (isLoopback(addr) || isUnspecified(addr)) return true;
    const c = canonicalIp(addr);
    return c !== undefined && this.o.resolver.localAddresses().some((l) => canonicalIp(l) === c);
  }

  /** Every address `host` has, canonical: itself for an address literal, else what it resolves to now. */
  private async lookup(host: string): Promise<string[]> {
    const literal = canonicalIp(host);
    if (literal) return [literal];
    return (await this.o.resolver.resolveAll(host)).map((a) => canonicalIp(a) ?? a);
  }

  /**
   * For a request: every address of `host`, or an InvalidError naming `field` (a metadata name, before any
   * lookup; a name that does not resolve).
   */
  private async addresses(field: string, host: string): Promise<string[]> {
    const byName = this.forbidden(field, host, []);
    if (byName) throw new InvalidError(byName, field);
    try {
      return await this.lookup(host);
    } catch (err) {
      throw new InvalidError(`${field} host ${host} does not resolve (${(err as Error).message})`, field);
    }
  }

  /** At connect or delivery time: every address of `host`, or a TargetRefusedError for a metadata name. */
  private async addressesNow(field: string, host: string): Promise<string[]> {
    const byName = this.forbidden(field, host, []);
    if (byName) throw new TargetRefusedError(byName);
    return this.lookup(host);
  }

  /** Why `host` (resolved to `addrs`) may never be a target, as a sentence naming `field`; undefined if fine. */
  private forbidden(field: string, host: string, addrs: string[]): string | undefined {
    const byName = forbiddenHost(host);
    const byAddr = addrs.map(forbiddenAddress).find(Boolean);
    const why = byName ?? byAddr;
    if (!why) return undefined;
    const verb = parseIp(host) ? 'is' : byName ? 'is' : 'resolves to';
    return `${field}'s host ${host} ${verb} ${why}; refused (link-local and cloud metadata addresses are never a target)`;
  }

  /** Why an output at host:port, resolved to `addrs`, is refused; undefined if fine. */
  outputRefusal(field: string, host: string, port: number, addrs: string[]): string | undefined {
    const bad = this.forbidden(field, host, addrs);
    if (bad) return bad;
    if (this.o.ownPort(port) && (isLocalName(host) || addrs.some((a) => this.isHere(a)))) {
      return `${field} points at this server's own port ${port}; refused`;
    }
    return undefined;
  }

  /** /call/startup, /push/startup: an output's host, before anything starts (a 400 naming `field`). */
  async checkOutput(field: string, host: string, port: number): Promise<void> {
    const why = this.outputRefusal(field, host, port, await this.addresses(field, host));
    if (why) throw new InvalidError(why, field);
  }

  /**
   * At each connect (adapters): the address to connect to, checked now. Rejects with a TargetRefusedError,
   * or with the resolver's error (DNS failure).
   */
  async connectAddress(field: string, host: string, port: number): Promise<string> {
    const addrs = await this.addressesNow(field, host);
    const why = this.outputRefusal(field, host, port, addrs);
    if (why) throw new TargetRefusedError(why);
    const first = addrs[0];
    if (first === undefined) throw Object.assign(new Error(`${host} has no address`), { code: 'ENOTFOUND' });
    return first;
  }

  /** A URL the server fetches (hooks, an injected stream): its host may never be forbidden. */
  async checkUrl(field: string, url: string): Promise<void> {
    const host = urlHost(url);
    if (host === undefined) return;
    const why = this.forbidden(field, host, await this.addresses(field, host));
    if (why) throw new InvalidError(why, field);
  }

  /** Like checkUrl, at delivery time: rejects with a TargetRefusedError (the resolver's error for DNS). */
  async checkUrlNow(field: string, url: string): Promise<void> {
    const host = urlHost(url);
    if (host === undefined) return;
    const why = this.forbidden(field, host, await this.addressesNow(field, host));
    if (why) throw new TargetRefusedError(why);
  }

  /** /call/startup's SIP fields and identity, before the call is accepted (a 400 naming the field). */
  async checkSip(req: StartupRequest): Promise<void> {
    const c = this.o.config;
    const domainField = req.sipDomainFromCallee ? 'callee' : 'sipDomain';
    // With an outbound proxy, every request goes to the proxy (sipPort is its port); the domain is only named.
    const targets: { field: string; hostPort: string; defaultPort: number; contacted: boolean }[] = [
      { field: domainField, hostPort: req.sipDomain, defaultPort: !req.sipOutboundProxy && req.sipPort ? req.sipPort : SIP_PORT, contacted: !req.sipOutboundProxy },
    ];
    if (req.sipOutboundProxy) targets.push({ field: 'sipOutboundProxy', hostPort: req.sipOutboundProxy, defaultPort: req.sipPort ?? SIP_PORT, contacted: true });
    const checks = targets.map(async (t) => {
      const { host, port } = hostPort(t.field, t.hostPort, t.defaultPort);
      if (!hostAllowed(host, c.sip.allowedDomains)) throw new InvalidError(`${t.field} host ${host} is not allowed (SIP_ALLOWED_DOMAINS)`, t.field);
      const addrs = await this.addresses(t.field, host);
      const bad = this.forbidden(t.field, host, addrs);
      if (bad) throw new InvalidError(bad, t.field);
      if (t.contacted && !c.sip.allowSelfTargets) {
        const self = await this.selfSip(host, port, addrs);
        if (self) throw new InvalidError(`${t.field} ${host}:${port} is ${self}; refused (ALLOW_SELF_SIP_TARGETS)`, t.field);
      }
    });
    await Promise.all([...checks, this.checkIdentity(req)]);
  }

  /** Which of our own SIP services host:port (resolved to `addrs`) is, if it is one. */
  private async selfSip(host: string, port: number, addrs: string[]): Promise<string | undefined> {
    const c = this.o.config;
    const own: { what: string; hostPort: string }[] = [
      ...c.sip.pbxAddresses.map((hp) => ({ what: "the PBX's own SIP address", hostPort: hp })),
      { what: "this app's media-leg SIP service (SIP_UAS_HOST:SIP_UAS_PORT)", hostPort: `${c.sipUas.host.includes(':') ? `[${c.sipUas.host}]` : c.sipUas.host}:${c.sipUas.port}` },
    ];
    const here = isLocalName(host) || addrs.some((a) => this.isHere(a));
    for (const o of own) {
      const s = hostPort('PBX_SIP_ADDRESSES', o.hostPort, SIP_PORT);
      if (s.port !== port) continue;
      if (s.host.toLowerCase() === host.toLowerCase()) return o.what;
      const theirs = await this.lookup(s.host).catch(() => [] as string[]);
      const theirsHere = isLocalName(s.host) || theirs.some((a) => this.isHere(a));
      // This host's addresses are all one machine: Asterisk bound to 0.0.0.0 answers on each of them.
      if (here && theirsHere) return o.what;
      if (addrs.some((a) => theirs.includes(a))) return o.what;
    }
    return undefined;
  }

  /** A sipLogin (or sipAuthenticationName) that is the name of one of the PBX's own PJSIP objects. */
  private async checkIdentity(req: StartupRequest): Promise<void> {
    const pbx = this.o.pbx;
    // Not connected: startup() answers 503 anyway.
    if (!pbx?.sipObjectsNamed || !pbx.connected) return;
    const names = [['sipLogin', req.sipLogin], ['sipAuthenticationName', req.sipAuthenticationName]].filter(([, v]) => v) as [string, string][];
    await Promise.all(names.map(async ([field, name]) => {
      let found: string[];
      try {
        found = await pbx.sipObjectsNamed!(name);
      } catch (err) {
        throw new UnavailableError(`could not check ${field} against the PBX's SIP identities (${(err as Error).message}); try again`, field);
      }
      if (found.length > 0) throw new InvalidError(`${field} ${name} is the name of a PJSIP ${found.join('/')} on the PBX; use another login`, field);
    }));
  }
}

/** "host[:port]" (IPv6 in brackets) as host and port; an InvalidError naming `field` if malformed. */
function hostPort(field: string, text: string, defaultPort: number): { host: string; port: number } {
  try {
    const { host, port } = parseHostPort(text, defaultPort);
    return { host, port };
  } catch (err) {
    throw new InvalidError(`${field} ${(err as Error).message.replace(/^rtmpUrl /, '')}`, field);
  }
}

/** The host of an rtmp(s)/http(s)/srt URL, without brackets; undefined when it is no URL with a host. */
function urlHost(url: string): string | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/(?:[^/?#]*@)?(\[[^\]]*\]|[^/?#:]*)/i.exec(url.trim());
  if (!m || !m[1]) return undefined;
  return m[1].replace(/^\[(.*)\]$/, '$1');
}
