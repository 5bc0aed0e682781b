// Validates Istio objects with the schemas of @kubernetes-models/istio.
// stdin: a JSON array of manifests. stdout: a JSON array with one entry per manifest,
// {"kind", "name", "error"} where error is null when the object is valid. Exit code 0 always
// unless the input itself is unreadable: the Python test decides what a failure is.
import * as security from "@kubernetes-models/istio/security.istio.io/v1";
import * as networking from "@kubernetes-models/istio/networking.istio.io/v1";

const models = {
  "security.istio.io/v1": security,
  "networking.istio.io/v1": networking,
};

let raw = "";
for await (const chunk of process.stdin) raw += chunk;
const manifests = JSON.parse(raw);

const results = manifests.map((manifest) => {
  const kind = manifest.kind;
  const name = manifest.metadata?.name ?? "";
  const Model = models[manifest.apiVersion]?.[kind];
  if (!Model) {
    return { kind, name, error: `no model for ${manifest.apiVersion} ${kind}` };
  }
  try {
    new Model(manifest).validate();
    return { kind, name, error: null };
  } catch (err) {
    return { kind, name, error: err.message };
  }
});
process.stdout.write(JSON.stringify(results));
