export {
  type AccessRequestParams,
  AccessRequestTimeoutError,
  type AccessResult,
  type ClientOptions,
  CountersignApiError,
  CountersignClient,
  type ForbiddenActionsResult,
  type ForbiddenCheck,
  type IntrospectionResponse,
  type LeaseSummary,
  type RequestAccessOptions,
  type TaskCompletion,
  type TaskHeartbeat,
} from './client.js';
export { accessTokenHash, type DpopAlgorithm, type DpopKeyPair, DpopSigner } from './dpop.js';
export {
  type AgentCredentials,
  callbackSource,
  createAssertion,
  privateKeySource,
  type TokenSource,
} from './token-source.js';
