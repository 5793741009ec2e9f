/**
 * Allow-lists of host names (RTMP_ALLOWED_HOSTS, SIP_ALLOWED_DOMAINS): an entry matches the host exactly,
 * or, written `*.example.com`, any name below example.com (not example.com itself: list it too if wanted).
 * Compared case-insensitively, a trailing dot ignored. An empty list allows anything.
 */
export function hostAllowed(host: string, list: readonly string[]): boolean {
  if (list.length === 0) return true;
  const h = normal(host);
  return list.some((entry) => {
    const e = normal(entry);
    return e.startsWith('*.') ? h.endsWith(e.slice(1)) && h.length > e.length - 1 : h === e;
  });
}

const normal = (s: string) => s.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.+$/, '');
