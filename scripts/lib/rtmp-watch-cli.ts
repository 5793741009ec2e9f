/**
 * Play one RTMP stream for a while and print what RtmpWatcher measured, as JSON:
 *   node dist/scripts/lib/rtmp-watch-cli.js rtmp://127.0.0.1:1935/live streamName [seconds=30]
 * Ends early when the stream is unpublished or the connection ends. Exit status 0 if the stream stayed real time.
 */
import { RtmpWatcher } from './rtmp-watch.js';

const [url, name, secondsText] = process.argv.slice(2);
if (!url || !name) {
  console.error('usage: rtmp-watch-cli <rtmp://host[:port]/app> <streamName> [seconds=30]');
  process.exit(2);
}
const seconds = Number(secondsText ?? 30);
const watcher = new RtmpWatcher(url, name);
const cpu0 = process.cpuUsage();
let printed = false;
const done = (): void => {
  if (printed) return;
  printed = true;
  clearTimeout(timer);
  watcher.close();
  const verdict = watcher.realtime();
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ stats: watcher.stats(), realtime: verdict, cpuSeconds: (cpu.user + cpu.system) / 1e6 }, null, 2));
  process.exitCode = verdict.ok ? 0 : 1;
};
const timer = setTimeout(done, seconds * 1000);
watcher.once('end', () => setImmediate(done));
watcher.start();
