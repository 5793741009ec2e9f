/**
 * Typed ARI failures. Callers branch on these, never on message text:
 * - AriError: Asterisk answered with an HTTP error (status + Asterisk's own message);
 * - AriConnectionError: Asterisk could not be reached at all (down, restarting, timed out).
 */
export class AriError extends Error {
  override readonly name = 'AriError';
  constructor(
    readonly status: number,
    /** Asterisk's message, e.g. "Channel not found" or "Provided variable was not found". */
    readonly ariMessage: string,
    readonly method: string,
    /** Path without query string (queries can carry variables; they are not logged). */
    readonly path: string,
  ) {
    super(`ARI ${method} ${path} failed: ${status} ${ariMessage}`);
  }

  get isNotFound(): boolean {
    return this.status === 404;
  }
  /** 409: e.g. channel not in a state for that, or bridge busy. */
  get isConflict(): boolean {
    return this.status === 409;
  }
  /** 422 "Channel not in Stasis application" and friends. */
  get isUnprocessable(): boolean {
    return this.status === 422;
  }
}

export class AriConnectionError extends Error {
  override readonly name = 'AriConnectionError';
  /** How many times the request was tried (idempotent ones are retried on transient socket errors). */
  readonly attempts: number;
  constructor(
    readonly method: string,
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown; attempts?: number },
  ) {
    const attempts = options?.attempts ?? 1;
    super(`ARI ${method} ${path} unreachable: ${reason}${attempts > 1 ? ` (${attempts} attempts)` : ''}`, options);
    this.attempts = attempts;
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad request',
  401: 'Unauthorized (check ARI user/password)',
  403: 'Forbidden',
  404: 'Not found',
  409: 'Conflict',
  412: 'Precondition failed',
  422: 'Unprocessable entity',
  500: 'Internal server error',
  501: 'Not implemented',
  503: 'Service unavailable',
};

/**
 * Map an error answer to an AriError. Asterisk answers errors as JSON `{"message": "..."}`, but some
 * paths (authentication, the HTTP server itself) answer plain text or HTML.
 */
export function ariErrorFromResponse(status: number, body: string, method: string, path: string): AriError {
  let message = '';
  const text = body.trim();
  if (text.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object' && 'message' in parsed && typeof parsed.message === 'string') {
        message = parsed.message;
      } else if (parsed && typeof parsed === 'object' && 'error' in parsed && typeof parsed.error === 'string') {
        message = parsed.error;
      }
    } catch {
      // fall through to the text form
    }
  }
  if (!message && text && !text.startsWith('<')) message = text.slice(0, 200);
  if (!message && text.startsWith('<')) {
    const title = /<title>([^<]*)<\/title>/i.exec(text)?.[1];
    if (title) message = title.trim();
  }
  if (!message) message = STATUS_TEXT[status] ?? `HTTP ${status}`;
  return new AriError(status, message, method, path);
}
