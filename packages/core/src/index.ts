// The Countersign domain. Explicit exports only: this list is the public surface.
export { classifyAction, parseActionName } from './action.js';
export {
  type AgentLoad,
  type AnalyticsOptions,
  DEFAULT_WORKING_HOURS,
  type DurationStats,
  durationStats,
  type GroupLoad,
  isOutOfHours,
  type ReviewerLoad,
  type ReviewerLoadReport,
  RUBBER_STAMP_SECONDS,
  reviewerLoad,
  type WorkingHours,
} from './analytics.js';
export {
  type ActorType,
  type AuditActor,
  type AuditEvent,
  type AuditEventInput,
  auditEventBody,
  auditEventHash,
  type ChainVerification,
  chainEvent,
  GENESIS_HASH,
  verifyAuditChain,
} from './audit.js';
export {
  type BacktestChange,
  type BacktestReport,
  backtest,
  type OutcomeChange,
  recordedPolicyInput,
  type ShadowSummary,
  shadowSummary,
} from './backtest.js';
export { type CatalogEntryInput, ISSUER_NAME, ResourceCatalog, UNCATALOGUED } from './catalog.js';
export {
  type CheckpointSettings,
  decide,
  denyForIssuer,
  OBLIGATION_ANNOTATIONS,
  parseObligationAnnotations,
} from './checkpoint.js';
export {
  canonicalJson,
  checkToolCall,
  jsonDepth,
  MAX_JSON_DEPTH,
  portableSha256Hex,
  REQUEST_DIGEST_TAG,
  requestDigest,
  requestDigestOfCanonical,
  type Sha256Hex,
  sha256Hex,
  TOOL_CALL_TAG,
  taggedDigest,
  toolCallDigest,
  useSha256,
} from './digest.js';
export { parseDuration } from './duration.js';
export {
  CountersignError,
  ERROR_CODES,
  type ErrorCategory,
  type ErrorCode,
  isCountersignError,
} from './errors.js';
export {
  type AccessRequestEvaluation,
  type EvaluationAgent,
  type EvaluationSettings,
  evaluateAccessRequest,
  evaluatePolicyInput,
} from './evaluate.js';
export { newRowId, randomId } from './ids.js';
export {
  type CredentialPlan,
  DEFAULT_ISSUER,
  type Grant,
  type IssuedCredential,
  type Issuer,
  type IssuerRegistry,
  type ReceiptSigner,
} from './issuer-port.js';
export {
  type LeaseEndReason,
  MINT_GRACE_SECONDS,
  REVOCATION_CLAIM_SECONDS,
  revocationBackoffSeconds,
} from './lease-lifecycle.js';
export { buildPolicyInput } from './policy-input.js';
export {
  compareDecision,
  type PolicyTestCase,
  type PolicyTestExpectation,
  type PolicyTestResult,
  runPolicyTests,
} from './policy-tests.js';
export type {
  CedarValue,
  Clock,
  EvaluatedPolicy,
  PolicyEngine,
  PolicyEvaluation,
  PolicyInput,
} from './ports.js';
export { systemClock } from './ports.js';
export type {
  AccessRequestRecord,
  AgentRecord,
  ChallengePurpose,
  ChallengeRecord,
  EvidenceViewRecord,
  InviteRecord,
  LeaseRecord,
  LeaseStatus,
  OutboxRecord,
  ReviewerCredentialRecord,
  ReviewerRecord,
  ReviewerStatus,
  SealedSecretRecord,
  SessionRecord,
  ShadowDecisionRecord,
  TaskOutcome,
  TaskRecord,
  Verdict,
  VoteRecord,
  WorkloadIdentityBinding,
} from './records.js';
export {
  MAX_RESOURCE_LENGTH,
  matchesPattern,
  parsePattern,
  parseResource,
  type ResourceName,
  type ResourcePattern,
} from './resource.js';
export {
  assertToolCallDigest,
  DECISION_CHALLENGE_TAG,
  type DecisionChallengeInput,
  decisionChallenge,
  ineligibility,
  requestClaims,
  type Tally,
  tally,
  toolCallOf,
} from './review.js';
export {
  assessRisk,
  crossesBoundary,
  DEFAULT_RISK_SETTINGS,
  isTainted,
  type RiskSettings,
  type RiskWeights,
} from './risk.js';
export type { LeaseFilter, LeaseSelector, ReadMethods, Store, StoreTx } from './store-port.js';
export {
  mineSuggestions,
  SUGGESTION_MIN_APPROVALS,
  type SuggestedPolicy,
  type SuggestionProof,
  suggestionProof,
  suggestionText,
} from './suggest.js';
export { hasBidiControls, hasInvisibleCharacters, isSuspiciousText } from './text.js';
export {
  ACTION_CLASSES,
  type AccessRequestInput,
  type ActionClass,
  type Agent,
  type AgentStatus,
  type Decision,
  type DeterminingPolicy,
  type McpToolCallClaim,
  type Obligations,
  type Outcome,
  type RequestStatus,
  type ResourceFacts,
  type RiskAssessment,
  type RiskFactor,
  SENSITIVITIES,
  type Sensitivity,
  TERMINAL_STATUSES,
  type ToolCall,
} from './types.js';
export {
  type CommitAccessRequestArgs,
  runUnit,
  STORE_UNITS,
  type StoreUnitArgs,
  type StoreUnitName,
  type StoreUnitResult,
} from './units.js';
export { ADOPTION_CHALLENGE_TAG, adoptionChallenge, adoptPolicy } from './usecases/adopt-policy.js';
export {
  listUnusedAgents,
  type RegisterAgentInput,
  registerAgent,
  suspendAgent,
  validateAgentId,
  validateName,
} from './usecases/agents.js';
export { backtestCandidate, shadowDifferences } from './usecases/backtest-candidate.js';
export {
  type CastVoteInput,
  castVote,
  type VerifiedAssertion,
  type VoteResult,
} from './usecases/cast-vote.js';
export {
  checkForbiddenActions,
  type InvalidVisibilityCheck,
  isForbiddenOutright,
  MAX_VISIBILITY_CHECKS,
  type VisibilityCheck,
  type VisibilityResult,
} from './usecases/check-forbidden.js';
export { completeTask } from './usecases/complete-task.js';
export { consumeAssertion } from './usecases/consume-assertion.js';
export type { Assertion, DomainContext, IdGenerator, OneTimeId, RequestEvents } from './usecases/context.js';
export { deliverCredential } from './usecases/deliver-credential.js';
export { endLeases, errorClass } from './usecases/end-leases.js';
export { type EndTaskResult, endTask } from './usecases/end-task.js';
export { expireReview, expireReviews } from './usecases/expire-reviews.js';
export { failTask } from './usecases/fail-task.js';
export { getAccessRequest } from './usecases/get-access-request.js';
export { heartbeatTask } from './usecases/heartbeat-task.js';
export { NOT_MINTED } from './usecases/lease-record.js';
export { type LeaseState, leaseState, revokeLease } from './usecases/leases.js';
export { mintLease } from './usecases/mint-lease.js';
export { type ReapInput, type ReapResult, reapLeases } from './usecases/reap-leases.js';
export { recordPolicyLoad } from './usecases/record-policy-load.js';
export {
  ANALYTICS_MAX_ROWS,
  recordEvidenceView,
  reviewerLoadReport,
} from './usecases/reviewer-load.js';
export {
  bumpCounter,
  endReviewerSession,
  enrollReviewer,
  inviteReviewer,
  removeReviewer,
  startReviewerSession,
  validateGroups,
  validateReviewerEmail,
} from './usecases/reviewers.js';
export { putSealedSecret, rewrapSealedSecrets } from './usecases/sealed-secrets.js';
export {
  type AccessRequestResult,
  type SubmitAccessRequestInput,
  submitAccessRequest,
} from './usecases/submit-access-request.js';
export { withdrawAccessRequest } from './usecases/withdraw-access-request.js';
