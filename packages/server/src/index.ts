export { type CountersignServer, createServer, type ServerDeps, type ServerOverrides } from './app.js';
export {
  CONFIG_FILE,
  DEFAULT_PORT,
  defaultHome,
  loadCatalogFile,
  loadConfig,
  type ServerConfig,
} from './config.js';
export { hashToken, newSessionToken } from './console/session.js';
export { toWireError } from './errors.js';
export { AgentIdentity } from './identity/agent-identity.js';
export type { AgentAuthenticator, AgentCall, AuthenticatedAgent } from './identity/authenticator.js';
export {
  accessTokenHash,
  DPOP_ALGORITHMS,
  DPOP_MAX_AGE_SECONDS,
  type DpopProofCheck,
  normalizeHtu,
  type VerifiedDpopProof,
  verifyDpopProof,
} from './identity/dpop.js';
export { FederatedVerifier, type IssuerHealth, type TrustedIssuerConfig } from './identity/federated.js';
export {
  ASSERTION_ALGORITHMS,
  CLOCK_SKEW_SECONDS,
  MAX_ASSERTION_LIFETIME_SECONDS,
  PrivateKeyJwtAuthenticator,
} from './identity/private-key-jwt.js';
export { newRandomId } from './ids.js';
export {
  AUTHORIZATION_DETAILS_TYPE,
  accessTokenIssuer,
  credentialFingerprint,
} from './issuers/access-token.js';
export {
  PG_IDENTIFIER,
  parsePostgresResource,
  postgresRoleIssuer,
  scramSha256Verifier,
} from './issuers/postgres-role.js';
export { type IssuerEntry, issuerRegistry, type ServerIssuers } from './issuers/registry.js';
export {
  aeadOpen,
  aeadSeal,
  generateMasterKey,
  loadMasterKey,
  MAX_SECRET_BYTES,
  MAX_WRAPS_PER_KEY,
  type MasterKey,
  masterKeyFrom,
  NONCE_BYTES,
  newNonce,
  type SecretSummary,
  SecretVault,
  sealedAad,
  validateSecretName,
} from './issuers/sealed-secrets.js';
export { readSecretFile } from './issuers/secret-file.js';
export { parseJsonBody, textNestingDepth } from './json-body.js';
export { generateSigningKeyFile, loadSigningKey, type SigningKey } from './keys.js';
export {
  addressRefusal,
  checkDestination,
  type ResolvedAddress,
  type Resolver,
  systemResolver,
} from './proxy/destination.js';
export { backtestView, reviewerLoadView, windowParam } from './routes/insights.js';
export { proxyPathSegments } from './routes/proxy.js';
export { leaseView } from './views.js';
