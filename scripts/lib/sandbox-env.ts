/**
 * The running sandbox's settings (written by `scripts/sandbox up` to $SANDBOX_RUN/sandbox.env), and the
 * app settings that point at it. Shared by the demo, the benchmark and the tests.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const SANDBOX_RUN = process.env.SANDBOX_RUN ?? '/var/tmp/sip-as-rtmp-sandbox';

export type SandboxEnv = Record<string, string>;

/** The running sandbox's settings; throws a clear error if it is not up. */
export function readSandboxEnv(): SandboxEnv {
  let text: string;
  try {
    text = readFileSync(join(SANDBOX_RUN, 'sandbox.env'), 'utf8');
  } catch {
    throw new Error(`the sandbox is not up (no ${SANDBOX_RUN}/sandbox.env): run scripts/sandbox up`);
  }
  const env: SandboxEnv = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

/** Environment for loadConfig() that points the app at the sandbox. */
export function appEnvForSandbox(env: SandboxEnv): Record<string, string> {
  return {
    ARI_URL: env.ARI_URL!, ARI_USER: env.ARI_USER!, ARI_PASSWORD: env.ARI_PASSWORD!,
    AMI_URL: env.AMI_URL!, AMI_USER: env.AMI_USER!, AMI_PASSWORD: env.AMI_PASSWORD!,
    SIP_UAS_PORT: env.SIP_UAS_PORT!,
    // The sandbox's RTMPS front has a self-signed certificate: trust exactly that one.
    RTMP_TLS_CA_FILE: env.TLS_CERT!,
  };
}
