/** The repository's root: where package.json is, walking up from this compiled file (dist/scripts/lib). */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      readFileSync(join(d, 'package.json'));
      return d;
    } catch {
      /* keep walking */
    }
    d = dirname(d);
  }
  throw new Error('repository root not found');
})();
