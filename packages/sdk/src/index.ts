export {
  type AccessRequestParams,
  type AgentCredentials,
  type ClientOptions,
  CountersignApiError,
  CountersignClient,
  createAssertion,
  type IntrospectionResponse,
  type TaskCompletion,
} from './client.js';
