/**
 * The approval hook (HOOK_APPROVE): one synchronous POST of the request to the app's `<app URL>/<method>`,
 * as WCS asks its backend before it places a call. 2xx allows it; any other answer refuses it with the
 * backend's reason (its JSON `reason`/`error`/`message`, else its text, at most 200 characters); no answer
 * within the timeout refuses it as unavailable (503): a backend that is down approves nothing.
 */
import { RefusedError, UnavailableError } from '../../plugin/calls/errors.js';
import type { Approval } from '../../plugin/hooks/hooks.js';

export interface HttpApprovalOptions {
  /** The app URL for an appKey (HOOK_APPS, else HOOK_URL); undefined: no backend to ask, allowed. */
  appUrl: (appKey: string) => string | undefined;
  timeoutMs: number;
  nodeId: string;
  fetch?: typeof fetch;
  /** Checks the URL's host before each request (as RestHooks does); a rejection refuses as unavailable. */
  checkTarget?: (url: string) => Promise<void>;
}

export class HttpApproval implements Approval {
  constructor(private readonly o: HttpApprovalOptions) {}

  async approve(method: string, appKey: string, body: Record<string, unknown>): Promise<void> {
    const base = this.o.appUrl(appKey);
    if (!base) return;
    const u = new URL(base);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (u.username || u.password) {
      headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
      u.username = '';
      u.password = '';
    }
    u.pathname = `${u.pathname.replace(/\/+$/, '')}/${encodeURIComponent(method)}`;
    let res: Response;
    try {
      await this.o.checkTarget?.(u.href);
      res = await (this.o.fetch ?? fetch)(u, {
        method: 'POST', headers, redirect: 'manual', signal: AbortSignal.timeout(this.o.timeoutMs),
        body: JSON.stringify({ ...body, method, appKey, nodeId: this.o.nodeId }),
      });
    } catch (err) {
      const why = (err as Error).name === 'TimeoutError' ? `no answer in ${this.o.timeoutMs} ms` : (err as Error).message;
      throw new UnavailableError(`the backend's ${method} hook did not answer (${why}); try again`);
    }
    const text = (await res.text().catch(() => '')).trim();
    if (res.status >= 200 && res.status < 300) return;
    throw new RefusedError(`refused by the backend's ${method} hook (HTTP ${res.status})${text ? `: ${reasonOf(text)}` : ''}`);
  }
}

function reasonOf(text: string): string {
  let reason = text;
  try {
    const j = JSON.parse(text) as Record<string, unknown>;
    const r = j.reason ?? j.error ?? j.message ?? j.info;
    if (typeof r === 'string') reason = r;
  } catch {
    /* plain text */
  }
  return reason.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 200);
}
