import type { FastifyInstance } from 'fastify';

/**
 * Every method+path the server registered, from fastify's route tree (printRoutes, default form: each
 * line is one node, its full path the concatenation of its ancestors' segments). HEAD (added for each
 * GET) and OPTIONS are not API methods.
 */
export function registeredRoutes(app: FastifyInstance): string[] {
  const stack: string[] = [];
  const out: string[] = [];
  for (const line of app.printRoutes().split('\n')) {
    const m = /^((?:│ {3}| {4})*)(?:├── |└── )(\S+)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    stack.push(m[2]!);
    for (const method of m[3]?.split(', ') ?? []) {
      if (method !== 'HEAD' && method !== 'OPTIONS') out.push(`${method} ${stack.join('')}`);
    }
  }
  return out;
}
