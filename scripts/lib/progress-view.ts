/**
 * The demo's terminal view: one block, redrawn in place on a terminal (or printed line by line when the
 * output is a file or a pipe), with what a person watching wants: the call's status and how it got there,
 * the stream's state and where to watch it, and whether media flows.
 */
import type { CallStats } from '../../plugin/console/call-stats.js';
import type { ConsoleCall } from '../../plugin/console/live-feed.js';

export interface ProgressState {
  elapsedS: number;
  call: ConsoleCall | undefined;
  stats: CallStats | undefined;
  /** How to watch the stream: a player command, or where it was published. */
  watch: string;
  consoleUrl: string;
}

const STATUS_COLOR: Record<string, number> = { ESTABLISHED: 32, FINISH: 36, FAILED: 31, BUSY: 31, HOLD: 33 };

const paint = (s: string, code: number | undefined, color: boolean) => (color && code ? `\x1b[${code}m${s}\x1b[0m` : s);
const num = (x: number | null | undefined, digits = 0) => (x === null || x === undefined ? '—' : x.toFixed(digits));

/** The block's lines (no trailing newline). `color`: ANSI colours for a terminal. */
export function renderProgress(s: ProgressState, color: boolean): string[] {
  const c = s.call;
  const lines = [`sip-as-rtmp demo · ${s.elapsedS.toFixed(1)} s`];
  if (!c) return [...lines, '  call      starting…'];
  const t0 = Date.parse(c.createdAt);
  const path = c.events
    .filter((e) => /^[A-Z_]+$/.test(e.type) && !e.type.startsWith('STREAM_'))
    .map((e) => `${e.type} +${((Date.parse(e.at) - t0) / 1000).toFixed(2)}s`)
    .join(' → ');
  lines.push(`  call      ${c.callId} → ${c.callee}`);
  lines.push(`  status    ${paint(c.status, STATUS_COLOR[c.status], color)} (SIP ${c.sipStatus ?? '—'}) ${c.info}${c.reason ? ` [${c.reason}]` : ''}`);
  lines.push(`  timeline  ${path || '—'}`);
  const live = c.pushes.filter((p) => p.status === 'PUBLISHING').length;
  lines.push(`  stream    ${paint(c.rtmpStreamStatus, c.rtmpStreamStatus === 'PUBLISHING' ? 32 : undefined, color)}  ${c.pushes.length ? `${live}/${c.pushes.length} outputs publishing` : 'no outputs'}`);
  const st = s.stats;
  if (st) {
    const a = st.audio;
    lines.push(`  media     in ${a ? `${a.received} pkts, lost ${a.lost} (${num(a.lossPct, 1)} %), jitter ${num(a.jitterMs, 1)} ms` : '—'} · out ${num(st.bitrateKbps, 1)} kb/s · latency p50 ${num(st.latencyMs?.p50)} ms`);
  }
  lines.push(`  watch     ${s.watch}`);
  lines.push(`  console   ${s.consoleUrl}`);
  if (!['FINISH', 'FAILED', 'BUSY'].includes(c.status)) lines.push('  Ctrl-C hangs up and exits');
  return lines;
}

/** Redraws a block in place on a TTY: up over the last block, clear to the end, write the new one. */
export class TerminalBlock {
  private lastLines = 0;

  constructor(private readonly out: NodeJS.WriteStream) {}

  /** Lines printed below the block since: leave it as it is and draw the next one below them. */
  release(): void {
    this.lastLines = 0;
  }

  draw(lines: string[]): void {
    const up = this.lastLines > 0 ? `\x1b[${this.lastLines}F` : '';
    this.out.write(`${up}\x1b[0J${lines.join('\n')}\n`);
    this.lastLines = lines.length;
  }
}
