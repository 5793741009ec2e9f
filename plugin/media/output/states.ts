/** An output's connection states (push.ts), declared once; calls/states.ts builds the API's push states on them. No imports: the console loads it as is. */
export const OUTPUT_STATES = ['CONNECTING', 'PUBLISHING', 'RECONNECTING', 'FAILED', 'CLOSED'] as const;
export type OutputState = (typeof OUTPUT_STATES)[number];

/** A recording's states (recording.ts). */
export const RECORDING_STATES = ['RECORDING', 'FINALIZING', 'DONE', 'FAILED'] as const;
export type RecordingState = (typeof RECORDING_STATES)[number];
