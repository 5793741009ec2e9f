/**
 * Recording file names from a template, as WCS names its records: `{streamName}-{startTime}` and the like.
 * Pure: the settings check templates with it, and the recorder names files with it.
 */

/** WCS's template fields, plus {callId} and {date} (UTC, readable). */
export const TEMPLATE_FIELDS = ['streamName', 'callId', 'mediaSessionId', 'startTime', 'startTimeMillis', 'endTime', 'endTimeMillis', 'date', 'audioCodec', 'videoCodec'] as const;
export type TemplateField = (typeof TEMPLATE_FIELDS)[number];

/** What is wrong with a template (for "<field> <problem>"), or undefined. */
export function templateProblem(template: string): string | undefined {
  if (template.length === 0 || template.length > 200) return 'must be 1 to 200 characters';
  for (const m of template.matchAll(/\{([^}]*)\}/g)) {
    if (!(TEMPLATE_FIELDS as readonly string[]).includes(m[1]!)) {
      return `has an unknown field {${m[1]!.slice(0, 32)}} (known: ${TEMPLATE_FIELDS.map((f) => `{${f}}`).join(' ')})`;
    }
  }
  return undefined;
}

/**
 * The file name (no extension) for these values: anything but letters, digits, '.', '-' and '_' becomes
 * '_' (no path, no hidden file), at most 200 characters. Fields without a value yet ({endTime} while
 * recording) read "live".
 */
export function renderFileName(template: string, values: Partial<Record<TemplateField, string>>): string {
  const name = template
    .replace(/\{([A-Za-z]+)\}/g, (_, f: TemplateField) => values[f] ?? 'live')
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .replace(/^[.]+/, '_')
    .slice(0, 200);
  return name || 'recording';
}

/** 2026-12-04T15:01:02.345Z → 20261204-150102 */
export function compactUtc(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}
