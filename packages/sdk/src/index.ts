export {
  type AccessRequestParams,
  type AgentCredentials,
  type ClientOptions,
  CountersignApiError,
  CountersignClient,
  createAssertion,
  type IntrospectionResponse,
  type LeaseSummary,
  type TaskCompletion,
  type TaskHeartbeat,
} from './client.js';
