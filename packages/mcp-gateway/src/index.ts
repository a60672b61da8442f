export { agentClient } from './agents.js';
export {
  type AgentConfig,
  type GatewayConfig,
  GatewayConfigSchema,
  loadGatewayConfig,
  parseGatewayConfig,
  type UpstreamConfig,
} from './config.js';
export { GatewayError, type GatewayErrorCode, type ToolErrorCode } from './errors.js';
export {
  ERROR_META,
  type GatewayOptions,
  type GatewaySession,
  McpGateway,
  NAMESPACE_SEPARATOR,
  PURPOSE_META,
  REQUEST_ID_META,
  toolError,
} from './gateway.js';
export {
  createGatewayHttpHandler,
  type GatewayHttpHandler,
  type GatewayHttpOptions,
  listenHttp,
  MAX_SESSIONS,
  type RunningHttpGateway,
  SESSION_IDLE_MS,
} from './http.js';
export { fixedResource, mapResource, ResourceMappingError } from './resource.js';
export { type RunningStdioGateway, serveGatewayStdio } from './stdio.js';
export { GATEWAY_NAME, GATEWAY_VERSION, Upstream } from './upstream.js';
