export {
  type AccessRequestBody,
  AccessRequestBodySchema,
  type ForbiddenChecksBody,
  ForbiddenChecksBodySchema,
  identifier,
  LIMITS,
  type McpToolCall,
  McpToolCallSchema,
  ToolCallSchema,
  text,
  WaitQuerySchema,
} from './schemas.js';
export type {
  AccessRequestWire,
  AccessTokenCredential,
  CredentialWire,
  DecisionWire,
  ErrorBody,
  PostgresRoleCredential,
  ProxyCredential,
  RequestStatusWire,
  SealedSecretCredential,
} from './wire.js';
