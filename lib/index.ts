export {
  createServiceProxy,
  ServiceProxy,
  type HealthReport,
  type ReloadOptions,
  type ShutdownOptions,
  type WorkerHealthEntry,
} from './main/service-proxy.ts';
export { createServiceAgent, ServiceAgent, type ServiceAgentOptions } from './worker/service-agent.ts';
export type { ServiceProxyOptions } from './options.ts';
export type { ProxySocketAddressInfo, SocketAddress } from './protocol/address-info.ts';
export type { BalancerName } from './balancers/balancer.ts';
export type { TransportName } from './transports/delivery.ts';
// WorkerView was first published as ServiceProxyAgent; both names stay.
export type { WorkerView, WorkerView as ServiceProxyAgent } from './main/worker-view.ts';
export { launch, type LaunchOptions, type Launched } from './launcher/launch.ts';
export { Level, logger, formatter, consoleHandler } from './logging.ts';
export type { SocketnautError } from './errors.ts';
export type { ProxyStats, WorkerStats, ConnectionCounters, ListenerStats } from './main/stats.ts';
export { serveMetrics, type MetricsServer } from './main/metrics.ts';
export { serveHealth, type HealthServer } from './main/health.ts';
