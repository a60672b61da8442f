export {
  type AccessRequestBody,
  AccessRequestBodySchema,
  identifier,
  LIMITS,
  ToolCallSchema,
  text,
  WaitQuerySchema,
} from './schemas.js';
export type {
  AccessRequestWire,
  AccessTokenCredential,
  DecisionWire,
  ErrorBody,
  RequestStatusWire,
} from './wire.js';
