/** A WCS REST call as a client makes it: POST JSON, answer as status + parsed body (if any). */
export async function postRest(baseUrl: string, method: string, body: unknown): Promise<{ status: number; text: string; json: unknown }> {
  const res = await fetch(`${baseUrl}${method}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}
