// Ask an installed OpenClaw (its own, internal dist chunks) how it resolves tool policy.
//
//   node openclaw-policy-probe.mjs <openclaw package dir> catalog        -> groups, profiles, aliases, tool ids
//   node openclaw-policy-probe.mjs <openclaw package dir> resolve < cases.json
//        cases: [{"id": "...", "config": {...}, "agentId": "main", "provider": null, "model": null}]
//        (a "provider" of the form "openai/gpt-4o" with no "model" is a model reference: parsed first)
//        -> [{"id": "...", "tools": [...]} | {"id": "...", "error": "..."}]
//
// The resolver functions are not public exports: they live in content-hashed chunks whose file names and
// export letters change per release. We find each chunk by glob (prefix-*.mjs) and each function by the
// name it has in the chunk's `export { localName as letter }` statement, so nothing here is hard-coded to
// one build's hashes.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [pkgDir, mode] = process.argv.slice(2);
if (!pkgDir || !mode) {
  process.stderr.write("usage: openclaw-policy-probe.mjs <openclaw package dir> catalog|resolve\n");
  process.exit(2);
}
const dist = join(pkgDir, "dist");
const files = readdirSync(dist);

async function loadExport(prefix, name) {
  const candidates = files.filter((f) => f.startsWith(prefix + "-") && f.endsWith(".mjs")
    && /^[A-Za-z0-9_-]{6,}$/.test(f.slice(prefix.length + 1, -4)));
  for (const file of candidates) {
    const text = readFileSync(join(dist, file), "utf8");
    const exportLine = text.match(/export\s*\{([^}]*)\}\s*;?\s*$/m);
    if (!exportLine) continue;
    for (const part of exportLine[1].split(",")) {
      const m = part.trim().match(/^(\w+)(?:\s+as\s+(\w+))?$/);
      if (m && m[1] === name) {
        const mod = await import(pathToFileURL(join(dist, file)).href);
        return mod[m[2] ?? m[1]];
      }
    }
  }
  throw new Error(`OpenClaw internal function ${name} not found in dist/${prefix}-*.mjs`);
}

const catalogMod = {
  CORE_TOOL_GROUPS: await loadExport("tool-catalog", "CORE_TOOL_GROUPS"),
  resolveCoreToolProfilePolicy: await loadExport("tool-catalog", "resolveCoreToolProfilePolicy"),
  isKnownCoreToolId: await loadExport("tool-catalog", "isKnownCoreToolId"),
  listCoreToolSections: await loadExport("tool-catalog", "listCoreToolSections"),
};

function coreToolIds() {
  const sections = catalogMod.listCoreToolSections({ swarmEnabled: true, githubPublicationAvailable: true });
  return sections.flatMap((s) => s.tools.map((t) => t.id));
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

if (mode === "catalog") {
  const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
  const profiles = {};
  for (const id of ["minimal", "coding", "messaging", "full"]) profiles[id] = catalogMod.resolveCoreToolProfilePolicy(id);
  const sections = catalogMod.listCoreToolSections({ swarmEnabled: true, githubPublicationAvailable: true });
  process.stdout.write(JSON.stringify({
    openclaw_version: pkg.version,
    tools: coreToolIds(),
    sections: sections.map((s) => ({ id: s.id, tools: s.tools.map((t) => t.id) })),
    groups: catalogMod.CORE_TOOL_GROUPS,
    profiles,
  }, null, 2) + "\n");
} else if (mode === "resolve") {
  const resolveEffectiveToolPolicy = await loadExport("agent-tools.policy", "resolveEffectiveToolPolicy");
  const resolveToolProfilePolicy = await loadExport("tool-policy-shared", "resolveToolProfilePolicy");
  const mergeAlsoAllowPolicy = await loadExport("tool-policy", "mergeAlsoAllowPolicy");
  const buildSteps = await loadExport("tool-policy-pipeline", "buildDefaultToolPolicyPipelineSteps");
  const applyPipeline = await loadExport("tool-policy-pipeline", "applyToolPolicyPipeline");
  const parseModelRef = await loadExport("model-selection-normalize", "parseModelRef");
  const cases = JSON.parse(await readStdin());
  const ids = coreToolIds();
  const out = [];
  for (const c of cases) {
    try {
      // Exactly what OpenClaw's tool resolution does (src/agents/tool-resolution.ts) for a session with
      // no group, sender, sandbox, subagent or runtime caps.
      // A provider given as a model reference ("openai/gpt-4o") and no model: the runtime parses such a
      // reference with parseModelRef before it resolves the policy; so do we, with OpenClaw's own parser.
      let provider = c.provider ?? undefined;
      let model = c.model ?? undefined;
      if (typeof provider === "string" && provider.includes("/") && !model) {
        const ref = parseModelRef(provider, "openai");
        if (ref) { provider = ref.provider; model = ref.model; }
      }
      const eff = resolveEffectiveToolPolicy({ config: c.config, agentId: c.agentId ?? undefined,
        modelProvider: provider, modelId: model });
      const profilePolicy = resolveToolProfilePolicy(eff.profile);
      const providerProfilePolicy = resolveToolProfilePolicy(eff.providerProfile);
      const steps = buildSteps({
        profilePolicy: mergeAlsoAllowPolicy(profilePolicy, [...(eff.profileAlsoAllow ?? [])]),
        profile: eff.profile,
        profileUnavailableCoreWarningAllowlist: profilePolicy?.allow,
        providerProfilePolicy: mergeAlsoAllowPolicy(providerProfilePolicy, [...(eff.providerProfileAlsoAllow ?? [])]),
        providerProfile: eff.providerProfile,
        providerProfileUnavailableCoreWarningAllowlist: providerProfilePolicy?.allow,
        globalPolicy: eff.globalPolicy,
        globalProviderPolicy: eff.globalProviderPolicy,
        agentPolicy: eff.agentPolicy,
        agentProviderPolicy: eff.agentProviderPolicy,
        agentId: eff.agentId,
      });
      const tools = applyPipeline({ tools: ids.map((name) => ({ name })), toolMeta: () => undefined,
        warn: () => {}, steps }).map((t) => t.name);
      out.push({ id: c.id, agentId: eff.agentId ?? null, tools });
    } catch (err) {
      out.push({ id: c.id, error: String(err?.message ?? err) });
    }
  }
  process.stdout.write(JSON.stringify(out) + "\n");
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
