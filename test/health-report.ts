// Shared by the tests of worker health: the probes' report, read from a launcher or a probe server.
import type { HealthReport } from 'socketnaut';
import { request, waitFor } from './helpers.ts';
import type { RunningLauncher } from './launcher.ts';

/** The launcher's probe URL, from its start-up line. */
export async function healthURL(launcher: RunningLauncher): Promise<URL> {
  const printed = await waitFor(() => /· health (http:\/\/\S+)/.exec(launcher.stdout())?.[1], {
    timeout: 5000,
    what: 'the health URL on stdout',
  });
  return new URL(printed);
}

/** The launcher's metrics URL, from its start-up line. */
export async function metricsURL(launcher: RunningLauncher): Promise<URL> {
  const printed = await waitFor(() => /· metrics (http:\/\/\S+)/.exec(launcher.stdout())?.[1], {
    timeout: 5000,
    what: 'the metrics URL on stdout',
  });
  return new URL(printed);
}

export interface Probe {
  status: number;
  report: HealthReport;
}

/** GET `path` (/ready or /live) from the probe server at `base`. */
export async function probe(base: URL, path: '/ready' | '/live' = '/live'): Promise<Probe> {
  const reply = await request(Number(base.port), { host: base.hostname, path });
  return { status: reply.status, report: JSON.parse(reply.text) as HealthReport };
}

/** The value of an unlabelled metric in a Prometheus text page. */
export function metricValue(text: string, name: string): number {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : NaN;
}

export async function scrape(metrics: URL): Promise<string> {
  const reply = await request(Number(metrics.port), { host: metrics.hostname, path: metrics.pathname });
  if (reply.status !== 200) throw new Error(`scrape: HTTP ${reply.status}`);
  return reply.text;
}
