# Shared by every template: where a Pod spec lives in each kind the constraints match, so a
# workload is judged before its Pods exist and a bare Pod is judged at admission.

obj := input.review.object

kind := obj.kind

name := object.get(obj.metadata, "name", object.get(obj.metadata, "generateName", ""))

template_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Rollout"}

pod_template := obj.spec.template if kind in template_kinds

pod_template := obj.spec.jobTemplate.spec.template if kind == "CronJob"

pod_spec := obj.spec if kind == "Pod"

pod_spec := pod_template.spec if kind != "Pod"

containers contains c if {
	some c in pod_spec.containers
}

containers contains c if {
	some c in pod_spec.initContainers
}

containers contains c if {
	some c in pod_spec.ephemeralContainers
}


# A workload exempted by name ("namespace/app.kubernetes.io/name" in exemptWorkloads), judged by
# its Pods' label so the workload and the Pods it creates get the same answer.
pod_labels := object.get(obj.metadata, "labels", {}) if kind == "Pod"

pod_labels := object.get(object.get(pod_template, "metadata", {}), "labels", {}) if kind != "Pod"

exempt if {
	some entry in object.get(input.parameters, "exemptWorkloads", [])
	entry == concat("/", [input.review.namespace, pod_labels["app.kubernetes.io/name"]])
}
