export {
  type AccessRequestParams,
  type AgentCredentials,
  type ClientOptions,
  CountersignApiError,
  CountersignClient,
  createAssertion,
} from './client.js';
