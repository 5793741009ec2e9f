/**
 * npm run cluster-demo — the cluster sandbox at work (`scripts/cluster up` first, which the npm script
 * runs): places calls through one node and shows where they went, dials in through Kamailio, kills a
 * node (its app and its Asterisk, kill -9) and times how long until the others report its calls FAILED,
 * shows that new calls avoid it, brings it back and ends everything. The cluster stays up afterwards
 * (`npm run cluster down` stops it).
 */
import { clusterCmd, dialThroughKamailio, findAll, readClusterEnv, type ClusterCall } from './lib/cluster.js';
import { readSandboxEnv } from './lib/sandbox-env.js';

const env = readSandboxEnv();
const c = readClusterEnv();
const t0 = Date.now();
const say = (s: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(2).padStart(6)} s] ${s}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const run = `demo-${Date.now().toString(36)}`;
const [first, victim] = [c.nodes[0]!, c.nodes[1]!];

const startup = (callId: string) => ({
  callId, callee: 'answer', sipDomain: '127.0.0.1', sipPort: env.SIPP_BENCH_PORT, hasAudio: 'true', hasVideo: 'false',
  rtmpUrl: env.RTMP_URL, rtmpStream: callId,
});
const spread = (l: ClusterCall[]) => c.nodes.map((n) => `${n.name} ${l.filter((x) => x.nodeId === n.name).length}`).join(', ');
async function until(pred: () => Promise<boolean>, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) if (await pred()) return true;
  return false;
}

say(`cluster: ${c.nodes.map((n) => `${n.name} (${n.rest}, CPU quota ${n.quota} cores)`).join('; ')}; Kamailio sip:${c.sipHost}:${c.sipPort}`);
const ids = Array.from({ length: 9 }, (_, i) => `${run}-${i}`);
say(`POST /call/startup ×${ids.length}, all to ${first.name}: each is placed on the node with the most CPU headroom and forwarded there`);
const answers = await Promise.all(ids.map((id) => first.post('/call/startup', startup(id))));
say(`answers: ${answers.map((a) => a.status).join(' ')}`);
await until(async () => (await findAll(first)).filter((x) => ids.includes(x.callId) && x.status === 'ESTABLISHED').length === ids.length, 20_000);
say(`placed: ${spread((await findAll(c.nodes[2]!)).filter((x) => ids.includes(x.callId)))} (as ${c.nodes[2]!.name} lists them)`);

say('3 callers dial 7200 through Kamailio (least call load per node, the next node on 503)');
const callers = dialThroughKamailio(c, { exten: '7200', count: 3, ratePerSec: 5, holdMs: 120_000, localPort: 5390, mediaPort: 18900 });
const inbound = async () => (await findAll(first)).filter((x) => x.incoming && x.callee === '7200' && x.status === 'ESTABLISHED' && Date.parse(x.createdAt) >= t0);
await until(async () => (await inbound()).length === 3, 15_000);
say(`inbound: ${spread(await inbound())}`);

const theirs = (await findAll(first)).filter((x) => x.nodeId === victim.name && x.status === 'ESTABLISHED').map((x) => x.callId);
say(`kill -9 of ${victim.name}'s app and Asterisk (it holds ${theirs.length} calls)`);
const killedAt = Date.now();
await clusterCmd(['kill', String(victim.n)]);
const reported = await until(async () => (await findAll(first)).filter((x) => theirs.includes(x.callId)).every((x) => x.status === 'FAILED'), 10_000);
const failed = (await findAll(first)).filter((x) => theirs.includes(x.callId));
say(reported ? `its ${theirs.length} calls FAILED on the other nodes after ${Date.now() - killedAt} ms: "${failed[0]?.info}"` : 'its calls were not reported within 10 s (see the logs in the sandbox run folder)');

const more = [`${run}-after-a`, `${run}-after-b`, `${run}-after-c`];
await Promise.all(more.map((id) => first.post('/call/startup', startup(id))));
await until(async () => (await findAll(first)).filter((x) => more.includes(x.callId) && x.status === 'ESTABLISHED').length === more.length, 15_000);
say(`3 new calls placed on live nodes only: ${spread((await findAll(first)).filter((x) => more.includes(x.callId)))}`);

say(`${victim.name} back (a fresh Asterisk, its app joins as someone new)`);
await clusterCmd(['start', String(victim.n)]);
say('ending every call');
callers.child.kill();
const live = (await findAll(first)).filter((x) => x.status === 'ESTABLISHED' && (x.callId.startsWith(run) || Date.parse(x.createdAt) >= t0));
await Promise.all(live.map((x, i) => c.nodes[i % c.nodes.length]!.post('/call/terminate', { callId: x.callId })));
await until(async () => (await findAll(first)).every((x) => x.status !== 'ESTABLISHED'), 15_000);
say('done; the cluster stays up (npm run cluster status | down)');
