{{/* Name of every object: the release name unless overridden. */}}
{{- define "bloodraven.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* part-of: bloodraven puts the Deployment under the project's own checklist (BR-WL-*). */}}
{{- define "bloodraven.labels" -}}
app.kubernetes.io/name: bloodraven
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: bloodraven
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "bloodraven.selectorLabels" -}}
app.kubernetes.io/name: bloodraven
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "bloodraven.webhookService" -}}
{{ include "bloodraven.fullname" . }}-webhook
{{- end -}}

{{- define "bloodraven.tlsSecret" -}}
{{- if and (not .Values.certManager.enabled) .Values.tls.secretName -}}
{{ .Values.tls.secretName }}
{{- else -}}
{{ include "bloodraven.fullname" . }}-webhook-tls
{{- end -}}
{{- end -}}

{{/* With tls.selfManaged the binary writes caBundle itself: the chart renders none, so an
upgrade never resets what the binary published. */}}
{{- define "bloodraven.selfManagedCerts" -}}
{{- if and .Values.tls.selfManaged.enabled (not .Values.certManager.enabled) -}}
true
{{- end -}}
{{- end -}}

{{/* What `serve --self-managed-certs` calls: its one Secret (read, then updated with the
resourceVersion read; the chart creates it, so no create) and the two webhook
configurations (read, then a JSON patch of every caBundle). Only these objects, by name. */}}
{{- define "bloodraven.rules.certSecret" -}}
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [{{ include "bloodraven.tlsSecret" . }}]
  verbs: [get, update]
{{- end -}}

{{- define "bloodraven.rules.webhookConfigurations" -}}
- apiGroups: [admissionregistration.k8s.io]
  resources: [validatingwebhookconfigurations, mutatingwebhookconfigurations]
  resourceNames: [{{ include "bloodraven.fullname" . }}]
  verbs: [get, patch]
{{- end -}}

{{- define "bloodraven.leaseName" -}}
{{ default (printf "%s-operator" (include "bloodraven.fullname" .)) .Values.leaderElection.leaseName }}
{{- end -}}

{{/* The identity the binary runs as: its reads, its writes and the status guard's exception. */}}
{{- define "bloodraven.serviceAccountUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "bloodraven.fullname" . }}
{{- end -}}

{{- define "bloodraven.subjects" -}}
subjects:
  - kind: ServiceAccount
    name: {{ include "bloodraven.fullname" . }}
    namespace: {{ .Release.Namespace }}
{{- end -}}

{{/*
RBAC rules. One definition per group of rules, used by the cluster-wide and the
namespace-scoped install alike, so the two cannot drift. tests/it/chart.rs checks that
their union equals webhook/rbac.yaml's bloodraven-operator role, which tests/it/
kube_real_operator.rs checks against the requests the binary sends.
*/}}

{{/* What the controllers call in the namespaces of their groups. Secrets are read one by
one by name (get): no Secret is listed or watched for the controllers. */}}
{{- define "bloodraven.rules.operator" -}}
- apiGroups: [shipstream.io]
  resources: [mysqlfailovergroups]
  verbs: [get, list, watch, patch]
- apiGroups: [shipstream.io]
  resources: [mysqlfailovergroups/status]
  verbs: [update, patch]
- apiGroups: [""]
  resources: [secrets]
  # create: each sidecar-enabled group's token Secret, only when absent; patch: its
  # ca.crt alone, kept equal to the operator's serving CA (the token is never written)
  verbs: [get, create, patch]
- apiGroups: [""]
  resources: [configmaps, persistentvolumeclaims, services]
  verbs: [list, watch, patch]
- apiGroups: [apps]
  resources: [deployments]
  # delete: a group's binary-log archiver once spec.backup.pitr is turned off
  verbs: [list, watch, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list, watch, patch]
- apiGroups: [externaldns.k8s.io]
  resources: [dnsendpoints]
  verbs: [list, watch, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [shipstream.io]
  resources: [mysqlbackups, mysqlbackupverifications]
  verbs: [list, watch]
- apiGroups: [shipstream.io]
  resources: [mysqlbackups]
  verbs: [create, patch, delete]
- apiGroups: [shipstream.io]
  resources: [mysqlbackups/status, mysqlbackupverifications/status]
  verbs: [patch]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, watch, patch]
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [list, watch, patch, delete]
{{- end -}}

{{/* Nodes are cluster-scoped: tainting needs a ClusterRole in either install. */}}
{{- define "bloodraven.rules.nodes" -}}
- apiGroups: [""]
  resources: [nodes]
  verbs: [list, patch]
{{- end -}}

{{/* Leader election (the Lease lives in the release namespace). */}}
{{- define "bloodraven.rules.leases" -}}
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
{{- end -}}

{{/* What serve reads for cross-object rules: list and watch only, never write. The cache
keeps a Secret's key names and its username, never a password. */}}
{{- define "bloodraven.rules.lookups" -}}
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch]
- apiGroups: [monitoring.coreos.com]
  resources: [prometheusrules]
  verbs: [get, list, watch]
{{- end -}}

{{- define "bloodraven.rules.storageclasses" -}}
- apiGroups: [storage.k8s.io]
  resources: [storageclasses]
  verbs: [get, list, watch]
{{- end -}}

{{/* The webhooks' shared parts. The operator's namespace is excluded so the webhook can
never block its own recovery (a failing webhook must not stop the operator from repairing
itself). */}}
{{- define "bloodraven.webhookCommon" -}}
admissionReviewVersions: [v1]
sideEffects: None
failurePolicy: {{ .failurePolicy }}
matchPolicy: Equivalent
timeoutSeconds: {{ .root.Values.webhook.timeoutSeconds }}
{{- if .reinvocationPolicy }}
# The patch is idempotent, so being called again after other mutators is harmless.
reinvocationPolicy: {{ .reinvocationPolicy }}
{{- end }}
clientConfig:
  service:
    name: {{ include "bloodraven.webhookService" .root }}
    namespace: {{ .root.Release.Namespace }}
    path: {{ .path }}
    port: {{ .root.Values.webhook.servicePort }}
  {{- if not .root.Values.tls.selfManaged.enabled }}
  caBundle: {{ ternary "" .root.Values.tls.caBundle .root.Values.certManager.enabled | quote }}
  {{- end }}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: [{{ .root.Release.Namespace }}]
{{- end -}}
