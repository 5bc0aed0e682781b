// Validates custom resources against the CRD schemas shipped in the pinned
// @kubernetes-models packages. Reads a JSON array of objects on stdin and prints a JSON
// array of {kind, name, error} (error null when valid). Unknown kinds are an error, so a
// new kind cannot slip through unvalidated.
import { Rollout } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/Rollout";
import { AnalysisTemplate } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/AnalysisTemplate";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { Probe } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/Probe";
import { AlertmanagerConfig } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1alpha1/AlertmanagerConfig";

const MODELS = {
  "argoproj.io/v1alpha1/Rollout": Rollout,
  "argoproj.io/v1alpha1/AnalysisTemplate": AnalysisTemplate,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PodMonitor": PodMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
  "monitoring.coreos.com/v1/Probe": Probe,
  "monitoring.coreos.com/v1alpha1/AlertmanagerConfig": AlertmanagerConfig,
};

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = JSON.parse(input).map((obj) => {
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  const name = obj.metadata?.name ?? null;
  if (!Model) return { kind: obj.kind, name, error: `no schema for ${obj.apiVersion}/${obj.kind}` };
  try {
    new Model(obj).validate();
    return { kind: obj.kind, name, error: null };
  } catch (e) {
    return { kind: obj.kind, name, error: String(e.message ?? e) };
  }
});
process.stdout.write(JSON.stringify(results));
