// claw-governance for OpenClaw: asks the claw-governance bridge (`claw-gov serve`) about every tool call.
//
// before_tool_call -> POST {bridgeUrl}/v1/openclaw/before_tool_call; the answer is OpenClaw's own result
// shape (nothing, {block, blockReason} or {requireApproval}). Fail closed: when the bridge is unreachable,
// slow, refuses us, or answers something malformed, the call is blocked with a reason the user can act on.
// after_tool_call -> POST {bridgeUrl}/v1/openclaw/after_tool_call (observe only; errors are logged), quoting
// the receipt the bridge returned with the decision: the bridge accepts one report per decision it made.
// Approval outcomes (requireApproval.onResolution) -> POST {bridgeUrl}/v1/openclaw/approval.
//
// Job tokens (docs/contracts.md): `jobToken` / `jobTokenFile` / $CLAW_JOB_TOKEN (and `jobId`) are sent with
// every hook payload as {"job": {token, jobId}}; the file is read once per OpenClaw run (the first hook of a
// runId), so an operator can put the next job's token in place between runs without a gateway restart, and a
// run keeps the token it started with. The token is never logged.
// Model calls: before_agent_run (OpenClaw's fail-closed run gate; needs hooks.allowConversationAccess) ->
// POST /v1/openclaw/before_agent_run, which blocks a run whose model route is outside the work contract or
// whose job token is refused; model_call_ended (observe only) and llm_input/llm_output (observe only; need
// hooks.allowConversationAccess) -> POST /v1/openclaw/model_call: model_call receipts.
//
// Plain ES module, no dependencies, no build step.
import { createHash, createHmac, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";

export const PLUGIN_ID = "claw-governance";
const DEFAULT_URL = "http://127.0.0.1:8787";
const DEFAULT_TIMEOUT_MS = 5000;
const DECISIONS = new Set(["allow", "deny", "escalate"]);
const SEVERITIES = new Set(["info", "warning", "critical"]);
const APPROVAL_DECISIONS = new Set(["allow-once", "allow-always", "deny"]);

function readText(path) {
  return readFileSync(path, "utf8").trim();
}

/** Resolve the plugin settings from `plugins.entries.claw-governance.config` (+ env); never throws. */
export function resolveSettings(raw, env = process.env) {
  const cfg = raw && typeof raw === "object" ? raw : {};
  const problems = [];
  let token = typeof cfg.token === "string" ? cfg.token.trim() : "";
  if (!token && typeof cfg.tokenFile === "string") {
    try { token = readText(cfg.tokenFile); } catch (err) { problems.push(`cannot read tokenFile ${cfg.tokenFile} (${err.code ?? err.message})`); }
  }
  if (!token) token = (env[typeof cfg.tokenEnv === "string" ? cfg.tokenEnv : "CLAW_BRIDGE_TOKEN"] ?? "").trim();
  let agentKeys = cfg.agentKeys && typeof cfg.agentKeys === "object" ? { ...cfg.agentKeys } : {};
  if (typeof cfg.agentKeysFile === "string") {
    try { agentKeys = { ...JSON.parse(readFileSync(cfg.agentKeysFile, "utf8")), ...agentKeys }; }
    catch (err) { problems.push(`cannot read agentKeysFile ${cfg.agentKeysFile} (${err.code ?? err.message})`); }
  }
  const keys = {};
  for (const [agent, secret] of Object.entries(agentKeys)) if (typeof secret === "string") keys[agent.trim().toLowerCase()] = secret;
  // The approval credential: a claw-governance reviewer token, separate from the agent-facing bridge token;
  // only /v1/openclaw/approval receives it (the bridge refuses an approval without it).
  let approvalToken = typeof cfg.approvalToken === "string" ? cfg.approvalToken.trim() : "";
  if (!approvalToken && typeof cfg.approvalTokenFile === "string") {
    try { approvalToken = readText(cfg.approvalTokenFile); } catch (err) { problems.push(`cannot read approvalTokenFile ${cfg.approvalTokenFile} (${err.code ?? err.message})`); }
  }
  if (!approvalToken) approvalToken = (env[typeof cfg.approvalTokenEnv === "string" ? cfg.approvalTokenEnv : "CLAW_APPROVAL_TOKEN"] ?? "").trim();
  // The job token: read per run (see jobFor), so only where it comes from is resolved here.
  const jobTokenFile = typeof cfg.jobTokenFile === "string" && cfg.jobTokenFile.trim() ? cfg.jobTokenFile.trim() : undefined;
  const jobTokenEnv = typeof cfg.jobTokenEnv === "string" && cfg.jobTokenEnv.trim() ? cfg.jobTokenEnv.trim() : "CLAW_JOB_TOKEN";
  const jobToken = typeof cfg.jobToken === "string" ? cfg.jobToken.trim() : "";
  const jobId = typeof cfg.jobId === "string" && cfg.jobId.trim() ? cfg.jobId.trim() : undefined;
  const timeout = Number.isFinite(cfg.timeoutMs) ? Math.min(14000, Math.max(100, Math.floor(cfg.timeoutMs))) : DEFAULT_TIMEOUT_MS;
  let bridgeUrl = typeof cfg.bridgeUrl === "string" && cfg.bridgeUrl.trim() ? cfg.bridgeUrl.trim() : DEFAULT_URL;
  bridgeUrl = bridgeUrl.replace(/\/+$/, "");
  if (!token) problems.push("no bridge token: set plugins.entries.claw-governance.config.token (or tokenFile, or the CLAW_BRIDGE_TOKEN environment variable) to the token `claw-gov serve` uses");
  return { bridgeUrl, token, approvalToken, timeoutMs: timeout, agentKeys: keys, problems, job: { token: jobToken, file: jobTokenFile, env: jobTokenEnv, jobId }, env };
}

function signatureHeaders(secret, agentId, path, body) {
  const ts = String(Date.now());
  const nonce = randomUUID();
  const digest = createHash("sha256").update(body).digest("hex");
  const signature = createHmac("sha256", secret).update(`${ts}\n${nonce}\n${path}\n${digest}`).digest("hex");
  return { "x-claw-agent": agentId, "x-claw-timestamp": ts, "x-claw-nonce": nonce, "x-claw-signature": signature };
}

class BridgeError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

/** POST JSON to the bridge; resolves to the parsed answer or throws a BridgeError with an actionable message. */
export async function postBridge(settings, path, payload, agentId, extraHeaders = {}) {
  const url = settings.bridgeUrl + path;
  const body = JSON.stringify(payload);
  const headers = { "content-type": "application/json", authorization: `Bearer ${settings.token}`, ...extraHeaders };
  const secret = agentId ? settings.agentKeys[String(agentId).toLowerCase()] : undefined;
  if (secret) Object.assign(headers, signatureHeaders(secret, String(agentId), new URL(url).pathname, body));
  let response;
  try {
    // redirect: "manual": a redirect is never followed (it could lead to an answer that is not the bridge's).
    response = await fetch(url, { method: "POST", headers, body, redirect: "manual", signal: AbortSignal.timeout(settings.timeoutMs) });
  } catch (err) {
    if (err?.name === "TimeoutError" || err?.name === "AbortError") {
      throw new BridgeError("slow", `the claw-governance bridge at ${settings.bridgeUrl} did not answer within ${settings.timeoutMs} ms; check it (GET ${settings.bridgeUrl}/health) or raise plugins.entries.claw-governance.config.timeoutMs`);
    }
    const code = err?.cause?.code ?? err?.code ?? err?.message ?? String(err);
    throw new BridgeError("unreachable", `the claw-governance bridge at ${settings.bridgeUrl} is unreachable (${code}); start it with \`claw-gov serve\` or fix plugins.entries.claw-governance.config.bridgeUrl`);
  }
  if (response.status >= 300 && response.status < 400) {
    throw new BridgeError("redirect", `the claw-governance bridge at ${settings.bridgeUrl} answered with a redirect (HTTP ${response.status}); the plugin does not follow redirects: set plugins.entries.claw-governance.config.bridgeUrl to the bridge itself`);
  }
  let text;
  try {
    text = await response.text();
  } catch (err) {
    throw new BridgeError("slow", `the claw-governance bridge at ${settings.bridgeUrl} did not finish its answer within ${settings.timeoutMs} ms`);
  }
  let data;
  try { data = JSON.parse(text); } catch { data = undefined; }
  if (response.status === 401 || response.status === 403) {
    throw new BridgeError("refused", `the claw-governance bridge refused this plugin (${data?.error ?? response.status}); check that config.token matches the bridge's CLAW_BRIDGE_TOKEN and, with signatures on, that config.agentKeys has this agent's key`);
  }
  if (!response.ok) {
    throw new BridgeError("error", `the claw-governance bridge answered HTTP ${response.status}${data?.error ? ` (${data.error})` : ""}`);
  }
  if (data === undefined || data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new BridgeError("malformed", `the claw-governance bridge sent an answer that is not a JSON object; check that the bridge at ${settings.bridgeUrl} is claw-governance (\`claw-gov serve\`) and its version matches the plugin`);
  }
  return data;
}

function malformed(why) {
  return new BridgeError("malformed", `the claw-governance bridge sent an unusable decision (${why}); check that the bridge and the plugin versions match`);
}

function block(reason) {
  return { block: true, blockReason: `Blocked by claw-governance: ${reason}` };
}

/** Turn a bridge answer into OpenClaw's before_tool_call result, validating every field. */
export function toHookResult(answer, onResolution) {
  if (!DECISIONS.has(answer.decision)) throw malformed(`decision ${JSON.stringify(answer.decision)}`);
  const result = answer.result;
  if (!result || typeof result !== "object" || Array.isArray(result)) throw malformed("no result object");
  if (answer.decision === "allow") {
    if (result.block !== undefined && result.block !== false) throw malformed("allow with a block");
    if (result.requireApproval !== undefined) throw malformed("allow with an approval");
    return undefined;
  }
  if (answer.decision === "deny") {
    if (result.block !== true || typeof result.blockReason !== "string" || !result.blockReason.trim()) throw malformed("deny without block/blockReason");
    return { block: true, blockReason: result.blockReason };
  }
  const approval = result.requireApproval;
  if (!approval || typeof approval !== "object") throw malformed("escalate without requireApproval");
  if (typeof approval.title !== "string" || !approval.title || typeof approval.description !== "string") throw malformed("approval without title/description");
  if (typeof answer.escalationId !== "string" || !answer.escalationId) throw malformed("escalate without escalationId");
  const out = {
    title: approval.title,
    description: approval.description,
    severity: SEVERITIES.has(approval.severity) ? approval.severity : "warning",
    allowedDecisions: Array.isArray(approval.allowedDecisions) && approval.allowedDecisions.every((d) => APPROVAL_DECISIONS.has(d)) && approval.allowedDecisions.length > 0
      ? [...approval.allowedDecisions] : ["allow-once", "deny"],
  };
  if (Number.isFinite(approval.timeoutMs) && approval.timeoutMs > 0) out.timeoutMs = Math.floor(approval.timeoutMs);
  if (typeof approval.timeoutReason === "string") out.timeoutReason = approval.timeoutReason;
  if (onResolution) out.onResolution = onResolution;
  return { requireApproval: out };
}

function logger(api) {
  const base = api?.logger;
  return {
    warn: (msg) => (base?.warn ? base.warn(msg) : console.warn(`[${PLUGIN_ID}] ${msg}`)),
    info: (msg) => (base?.info ? base.info(msg) : undefined),
  };
}

/** The job a run works under: {token, jobId} (token may be empty), or {problem} when the token file cannot
 * be read (then every call of the run is blocked: fail closed). Read from the source once per call site. */
export function readJob(settings) {
  const job = settings.job ?? {};
  let token = job.token || "";
  if (!token && job.file) {
    try { token = readText(job.file); } catch (err) { return { problem: `cannot read jobTokenFile ${job.file} (${err.code ?? err.message})` }; }
  }
  if (!token && !job.file) token = ((settings.env ?? process.env)[job.env ?? "CLAW_JOB_TOKEN"] ?? "").trim();
  return { token, jobId: job.jobId };
}

/** Build the hook handlers for a settings object (exported for tests and for embedding). */
export function createHandlers(settings, log = { warn: console.warn, info: () => {} }) {
  // per run: the job it started with, its agent (model_call hooks carry no agentId) and its llm_input
  const runs = new Map();
  function runOf(runId) {
    const key = typeof runId === "string" && runId ? runId : "";
    let run = runs.get(key);
    if (!run) {
      run = { job: readJob(settings), agentId: undefined, input: undefined, inputAt: undefined };
      // no run id: nothing to keep the job for, so it is read again next time
      if (key) {
        runs.set(key, run);
        while (runs.size > 2000) runs.delete(runs.keys().next().value);
      }
    }
    return run;
  }
  function jobPayload(run) {
    if (!run.job.token) return run.job.jobId ? { jobId: run.job.jobId } : undefined;
    return run.job.jobId ? { token: run.job.token, jobId: run.job.jobId } : { token: run.job.token };
  }
  // receipt of each decided call, by agent, run and tool call id, until its after_tool_call report (bounded)
  const receipts = new Map();
  const callKey = (event, ctx) => `${ctx?.agentId ?? ""}\0${event?.runId ?? ctx?.runId ?? ""}\0${event?.toolCallId ?? ctx?.toolCallId ?? ""}`;
  function remember(key, receipt) {
    if (typeof receipt !== "string" || !receipt) return;
    receipts.set(key, receipt);
    while (receipts.size > 10000) receipts.delete(receipts.keys().next().value);
  }
  async function beforeToolCall(event, ctx) {
    if (settings.problems.length > 0 && !settings.token) return block(settings.problems.join("; "));
    const agentId = ctx?.agentId;
    const run = runOf(event?.runId ?? ctx?.runId);
    if (run.job.problem) return block(run.job.problem);
    if (typeof agentId === "string") run.agentId = agentId;
    // The receipt of the model call that asked for this tool goes to the trail first (receipts: required
    // checks the order): model_call_ended starts its report synchronously, before OpenClaw runs the tools.
    if (run.reporting) await Promise.race([run.reporting, new Promise((done) => setTimeout(done, Math.min(1000, settings.timeoutMs)).unref?.())]);
    let answer;
    try {
      const job = jobPayload(run);
      answer = await postBridge(settings, "/v1/openclaw/before_tool_call", { event: sanitizeEvent(event), ctx: sanitizeCtx(ctx), ...(job ? { job } : {}) }, agentId);
      remember(callKey(event, ctx), answer?.receipt);
      const onResolution = async (resolution, details) => {
        try {
          if (!settings.approvalToken) throw new Error("no approval credential (config.approvalToken or CLAW_APPROVAL_TOKEN: a claw-gov reviewer token); the escalation stays pending and the call stays blocked");
          // OpenClaw's own approval id and the operator who decided, when the host passes them along
          const approvalId = details?.approvalId ?? details?.id;
          const operator = details?.resolvedBy ?? details?.operator ?? details?.actor;
          await postBridge(settings, "/v1/openclaw/approval", {
            escalationId: answer.escalationId, resolution, agentId,
            toolCallId: event?.toolCallId ?? ctx?.toolCallId, runId: event?.runId ?? ctx?.runId,
            sessionKey: ctx?.sessionKey, channelId: ctx?.channelId,
            ...(typeof approvalId === "string" ? { approvalId } : {}),
            ...(operator !== undefined && operator !== null ? { operator } : {}),
          }, agentId, { "x-claw-approval-token": settings.approvalToken });
        } catch (err) {
          log.warn(`could not report approval ${resolution} for escalation ${answer.escalationId}: ${err.message}`);
        }
      };
      return toHookResult(answer, answer.decision === "escalate" ? onResolution : undefined);
    } catch (err) {
      const reason = err instanceof BridgeError ? err.message : `unexpected plugin error (${err?.message ?? err})`;
      log.warn(`blocked ${event?.toolName ?? "tool"}: ${reason}`);
      return block(reason);
    }
  }
  async function afterToolCall(event, ctx) {
    if (!settings.token) return;
    const key = callKey(event, ctx);
    const receipt = receipts.get(key);
    receipts.delete(key);
    try {
      await postBridge(settings, "/v1/openclaw/after_tool_call", { event: sanitizeEvent(event, true), ctx: sanitizeCtx(ctx), receipt }, ctx?.agentId);
    } catch (err) {
      log.warn(`could not record the outcome of ${event?.toolName ?? "tool"}: ${err.message}`);
    }
  }
  async function beforeAgentRun(event, ctx) {
    const blocked = (reason) => ({ outcome: "block", reason: `claw-governance: ${reason}`, message: `Blocked by claw-governance: ${reason}` });
    if (settings.problems.length > 0 && !settings.token) return blocked(settings.problems.join("; "));
    const run = runOf(ctx?.runId);
    if (run.job.problem) return blocked(run.job.problem);
    if (typeof ctx?.agentId === "string") run.agentId = ctx.agentId;
    try {
      const job = jobPayload(run);
      // Neither the prompt nor the history is sent: the gate needs only the run's agent, model and job.
      const answer = await postBridge(settings, "/v1/openclaw/before_agent_run", { event: { channelId: event?.channelId }, ctx: sanitizeCtx(ctx), ...(job ? { job } : {}) }, ctx?.agentId);
      if (answer.outcome === "pass") return { outcome: "pass" };
      if (answer.outcome === "block" && typeof answer.reason === "string") {
        return { outcome: "block", reason: answer.reason, message: typeof answer.message === "string" ? answer.message : `Blocked by claw-governance: ${answer.reason}`, category: "claw-governance" };
      }
      throw malformed(`run gate outcome ${JSON.stringify(answer.outcome)}`);
    } catch (err) {
      const reason = err instanceof BridgeError ? err.message : `unexpected plugin error (${err?.message ?? err})`;
      log.warn(`blocked the run ${ctx?.runId ?? ""}: ${reason}`);
      return blocked(reason);
    }
  }
  async function report(kind, event, ctx, extra) {
    if (!settings.token) return;
    const run = runOf(event?.runId ?? ctx?.runId);
    const agentId = typeof ctx?.agentId === "string" ? ctx.agentId : run.agentId;
    const job = run.job.problem ? undefined : jobPayload(run);
    const sent = postBridge(settings, "/v1/openclaw/model_call", { kind, event: jsonSafe(event), ctx: { ...sanitizeCtx(ctx), ...(agentId ? { agentId } : {}) }, ...(job ? { job } : {}), ...extra }, agentId)
      .then(() => undefined, (err) => { log.warn(`could not record the model call of run ${event?.runId ?? ""}: ${err.message}`); });
    run.reporting = sent;
    await sent;
    if (run.reporting === sent) run.reporting = undefined;
  }
  async function modelCallEnded(event, ctx) {
    await report("call", event, ctx, {});
  }
  function llmInput(event, ctx) {
    const run = runOf(event?.runId ?? ctx?.runId);
    if (typeof ctx?.agentId === "string") run.agentId = ctx.agentId;
    // kept until llm_output, where the bridge hashes it (the receipt holds hashes, never the text)
    run.input = jsonSafe({ systemPrompt: event?.systemPrompt, prompt: event?.prompt, historyMessages: event?.historyMessages });
    run.inputAt = Date.now();
  }
  async function llmOutput(event, ctx) {
    const run = runOf(event?.runId ?? ctx?.runId);
    const request = run.input;
    const durationMs = run.inputAt !== undefined ? Date.now() - run.inputAt : undefined;
    run.input = undefined;
    run.inputAt = undefined;
    const { assistantTexts, lastAssistant, ...rest } = event ?? {};
    await report("attempt", rest, ctx, { request: request ?? null, response: jsonSafe({ assistantTexts, lastAssistant }), ...(durationMs !== undefined ? { durationMs } : {}) });
  }
  return { beforeToolCall, afterToolCall, beforeAgentRun, modelCallEnded, llmInput, llmOutput };
}

function jsonSafe(value) {
  try { return JSON.parse(JSON.stringify(value ?? null)); } catch { return String(value); }
}

function sanitizeEvent(event, withResult = false) {
  const e = event ?? {};
  const out = { toolName: e.toolName, params: jsonSafe(e.params ?? {}), runId: e.runId, toolCallId: e.toolCallId };
  if (e.toolKind) out.toolKind = e.toolKind;
  if (withResult) {
    if (e.result !== undefined) out.result = jsonSafe(e.result);
    if (e.error !== undefined) out.error = String(e.error);
    if (Number.isFinite(e.durationMs)) out.durationMs = e.durationMs;
  }
  return out;
}

function sanitizeCtx(ctx) {
  const c = ctx ?? {};
  const out = {};
  for (const key of ["agentId", "sessionKey", "sessionId", "runId", "toolName", "toolCallId", "channelId", "modelProviderId", "modelId"]) {
    if (typeof c[key] === "string") out[key] = c[key];
  }
  return out;
}

const plugin = {
  id: PLUGIN_ID,
  name: "claw-governance",
  description: "Every tool call decided by claw-governance through its bridge; fails closed.",
  register(api) {
    const settings = resolveSettings(api?.pluginConfig);
    const log = logger(api);
    for (const problem of settings.problems) log.warn(problem);
    const handlers = createHandlers(settings, log);
    const timeoutMs = settings.timeoutMs + 1000;
    // Run before other plugins' hooks (a block is terminal) and leave room for our own timeout.
    api.on("before_tool_call", handlers.beforeToolCall, { priority: 1000, timeoutMs });
    api.on("after_tool_call", handlers.afterToolCall, { timeoutMs });
    // Observe only: one model_call receipt per provider request.
    api.on("model_call_ended", handlers.modelCallEnded, { timeoutMs });
    // Conversation hooks: OpenClaw registers these only with
    // plugins.entries.claw-governance.hooks.allowConversationAccess=true (it warns and skips them otherwise).
    api.on("before_agent_run", handlers.beforeAgentRun, { priority: 1000, timeoutMs });
    api.on("llm_input", handlers.llmInput, { timeoutMs });
    api.on("llm_output", handlers.llmOutput, { timeoutMs });
  },
};

export default plugin;
