// Main service of the Supabase edge runtime: routes /<function>/... to a user worker.
//
// Kong strips /functions/v1, so the first path segment is the function name. JWTs are
// verified here (VERIFY_JWT) before a worker is spawned, so an unauthenticated request never
// costs a worker boot.
import * as jose from "https://deno.land/x/jose@v4.14.4/index.ts";

// ES256 tokens (user sessions, the keys Kong substitutes for sb_ API keys) verify against the
// JWKS. jose's local JWKS serves asymmetric algorithms only, so HS256 legacy tokens check
// against JWT_SECRET, which the chart sets only while legacy API keys are switched on.
const JWKS = jose.createLocalJWKSet(JSON.parse(Deno.env.get("SUPABASE_JWKS") ?? '{"keys":[]}'));
const JWT_SECRET = Deno.env.get("JWT_SECRET") ?? "";
const VERIFY_JWT = Deno.env.get("VERIFY_JWT") === "true";
const FUNCTION_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

function json(status: number, body: Record<string, unknown>): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

async function verify(req: Request): Promise<boolean> {
  const header = req.headers.get("authorization") ?? "";
  const [scheme, token] = header.split(" ");
  if (scheme !== "Bearer" || !token) return false;
  try {
    if (jose.decodeProtectedHeader(token).alg === "HS256") {
      if (!JWT_SECRET) return false;
      await jose.jwtVerify(token, new TextEncoder().encode(JWT_SECRET), { algorithms: ["HS256"] });
    } else {
      await jose.jwtVerify(token, JWKS, { algorithms: ["ES256"] });
    }
    return true;
  } catch {
    return false;
  }
}

Deno.serve(async (req: Request) => {
  const url = new URL(req.url);
  // Kubelet probes: answered by the main service itself, no worker, no auth.
  if (url.pathname === "/_internal/health") return json(200, { status: "ok" });

  if (req.method !== "OPTIONS" && VERIFY_JWT && !(await verify(req))) {
    return json(401, { msg: "Invalid JWT" });
  }

  const name = url.pathname.split("/")[1] ?? "";
  if (!FUNCTION_NAME.test(name) || name === "main") {
    return json(404, { msg: "function not found" });
  }

  try {
    // @ts-ignore EdgeRuntime is a global of the Supabase edge runtime.
    const worker = await EdgeRuntime.userWorkers.create({
      servicePath: `/home/deno/functions/${name}`,
      memoryLimitMb: 150,
      workerTimeoutMs: 5 * 60 * 1000,
      noModuleCache: false,
      envVars: Object.entries(Deno.env.toObject()),
      forceCreate: false,
      cpuTimeSoftLimitMs: 1000,
      cpuTimeHardLimitMs: 2000,
    });
    return await worker.fetch(req);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return json(message.includes("not found") ? 404 : 500, { msg: message });
  }
});
