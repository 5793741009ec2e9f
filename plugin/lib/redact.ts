/**
 * Masks for what may be shown or logged: URLs without credentials or query, secrets by their first
 * characters. Pure (no Node imports): the console page loads this module, via the validators, as is.
 */

/**
 * A URL as it may be logged: no user:password, no query string (where keys and tokens travel), and for
 * RTMP the last path segment (the stream name/key) masked.
 */
export function redactUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return '[unparseable url]';
  }
  if (u.username || u.password) {
    u.username = '***';
    u.password = '';
  }
  if (u.search) u.search = '?***';
  return u.toString();
}

/**
 * A secret shown only by its first characters, so a person can tell which one it was: "abcdefgh" →
 * "abcd***". Its length is not revealed; a short one shows nothing.
 */
export function maskSecret(s: string, keep = 4): string {
  return s.length <= keep * 2 ? '***' : `${s.slice(0, keep)}***`;
}
