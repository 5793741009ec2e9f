/**
 * Carries a REST request to another node of the cluster (plugin/cluster/front.ts): JSON over HTTP(S),
 * one keep-alive pool per node (undici), with a deadline so a hung node can't hold the client's request.
 */
import { Agent, request } from 'undici';
import type { Answer, Forwarder } from '../../plugin/cluster/front.js';

export class HttpForwarder implements Forwarder {
  private readonly agent: Agent;

  constructor(private readonly o: { timeoutMs: number; connections?: number; tls?: { rejectUnauthorized: boolean } }) {
    this.agent = new Agent({ connections: o.connections ?? 16, connect: o.tls ?? {}, headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs });
  }

  async post(baseUrl: string, path: string, body: unknown, headers: Record<string, string>): Promise<Answer> {
    const res = await request(`${baseUrl}${path}`, {
      method: 'POST',
      dispatcher: this.agent,
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify(body ?? {}),
      signal: AbortSignal.timeout(this.o.timeoutMs),
    });
    const text = await res.body.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = { error: text.slice(0, 200) };
    }
    return { status: res.statusCode, body: parsed };
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
