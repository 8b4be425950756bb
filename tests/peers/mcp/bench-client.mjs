// Drive server-everything's `echo` with the official MCP TypeScript SDK client, the baseline the
// runtime's MCP rows are compared with (bench/mcp.sh). One client session, CONCURRENCY calls in
// flight, for DURATION_MS after a WARMUP_MS warm-up. Prints one JSON line:
//   {"calls": n, "seconds": s, "clientCpuUs": µs of this Node process, "serverPid": pid|null}
// The caller reads the server's CPU from /proc/<pid>/stat around the run (for stdio the server is
// this client's child, so its pid is printed as soon as it is known, on a line of its own).
//
// Usage: node tests/peers/mcp/bench-client.mjs stdio <server-bin>
//        node tests/peers/mcp/bench-client.mjs http <url>
// Env: CONCURRENCY (16), DURATION_MS (10000), WARMUP_MS (3000).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createInterface } from 'node:readline';

const [mode, target] = process.argv.slice(2);
const concurrency = Number(process.env.CONCURRENCY || 16);
const durationMs = Number(process.env.DURATION_MS || 10000);
const warmupMs = Number(process.env.WARMUP_MS || 3000);

const transport = mode === 'stdio'
  ? new StdioClientTransport({ command: target, args: ['stdio'], stderr: 'ignore' })
  : new StreamableHTTPClientTransport(new URL(target));
const client = new Client({ name: 'portcullis-bench', version: '1.0.0' });
await client.connect(transport);
if (mode === 'stdio') console.log(JSON.stringify({ serverPid: transport.pid }));

const args = { name: 'echo', arguments: { message: 'hello' } };
async function loop(until, counter) {
  while (Date.now() < until) {
    const result = await client.callTool(args);
    if (result.isError) throw new Error(`echo failed: ${JSON.stringify(result)}`);
    counter.calls += 1;
  }
}
async function run(ms) {
  const counter = { calls: 0 };
  const until = Date.now() + ms;
  await Promise.all(Array.from({ length: concurrency }, () => loop(until, counter)));
  return counter.calls;
}

await run(warmupMs);
// The caller samples the server's CPU between these two lines.
console.log(JSON.stringify({ phase: 'measure' }));
await new Promise((resolve) => {
  // Wait for the caller's go-ahead (a line on stdin) so its /proc sample precedes the run.
  const rl = createInterface({ input: process.stdin });
  rl.once('line', () => { rl.close(); resolve(); });
});
const cpuBefore = process.cpuUsage();
const started = process.hrtime.bigint();
const calls = await run(durationMs);
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const cpu = process.cpuUsage(cpuBefore);
console.log(JSON.stringify({ calls, seconds, clientCpuUs: cpu.user + cpu.system }));
await new Promise((resolve) => {
  const rl = createInterface({ input: process.stdin });
  rl.once('line', () => { rl.close(); resolve(); });
});
await client.close();
// stdin stays referenced by the readline interfaces; the run is over.
process.exit(0);
