export { createServiceProxy, ServiceProxy, type ShutdownOptions } from './service-proxy.ts';
export { createServiceAgent, ServiceAgent, type ServiceAgentOptions } from './service-agent.ts';
export type { ServiceProxyOptions } from './options.ts';
export type { ProxySocketAddressInfo, SocketAddress } from './address-info.ts';
export type { BalancerName } from './balancers/index.ts';
export type { TransportName } from './transports/index.ts';
export type { WorkerHandle as ServiceProxyAgent } from './worker-handle.ts';
export { Level, logger, formatter, consoleHandler } from './logging.ts';
export type { SocketnautError } from './errors.ts';
