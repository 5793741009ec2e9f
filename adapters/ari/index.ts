export * from './client.js';
export * from './errors.js';
export * from './events.js';
export * from './types.js';
export * from './ledger.js';
