{{/*
Chart name (nameOverride or the chart's name), at most 63 characters.
*/}}
{{- define "flinkscale.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name, the prefix of every object's name: fullnameOverride, else
<release>-<name> (just <release> when it already contains the name).
*/}}
{{- define "flinkscale.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
chart label value: <name>-<version>.
*/}}
{{- define "flinkscale.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "flinkscale.labels" -}}
helm.sh/chart: {{ include "flinkscale.chart" . }}
{{ include "flinkscale.selectorLabels" . }}
app.kubernetes.io/version: {{ include "flinkscale.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flinkscale
{{- end }}

{{/*
Selector labels of the controller pods.
*/}}
{{- define "flinkscale.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flinkscale.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Image tag: image.tag, else the chart's appVersion.
*/}}
{{- define "flinkscale.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
Container image: repository@digest when image.digest is set (the tag is then
only the version label), else repository:tag.
*/}}
{{- define "flinkscale.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "flinkscale.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "flinkscale.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "flinkscale.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the leader election Lease.
*/}}
{{- define "flinkscale.leaderElectionID" -}}
{{- default (include "flinkscale.fullname" .) .Values.leaderElection.id }}
{{- end }}

{{/*
A Go duration of the form values.schema.json allows (e.g. 1h30m, 45s, 500ms,
0) in whole seconds, rounded up.
*/}}
{{- define "flinkscale.durationSeconds" -}}
{{- $total := 0 }}
{{- range regexFindAll "[0-9]+(ms|h|m|s)" . -1 }}
{{- $n := regexFind "^[0-9]+" . | atoi }}
{{- $unit := regexReplaceAll "^[0-9]+" . "" }}
{{- if eq $unit "h" }}{{ $total = add $total (mul $n 3600) }}
{{- else if eq $unit "m" }}{{ $total = add $total (mul $n 60) }}
{{- else if eq $unit "s" }}{{ $total = add $total $n }}
{{- else }}{{ $total = add $total (div (add $n 999) 1000) }}
{{- end }}
{{- end }}
{{- $total }}
{{- end }}

{{/*
terminationGracePeriodSeconds: the value, else the graceful shutdown timeout
plus 10 s; never below the graceful shutdown timeout.
*/}}
{{- define "flinkscale.terminationGracePeriodSeconds" -}}
{{- $graceful := include "flinkscale.durationSeconds" .Values.controller.gracefulShutdownTimeout | atoi }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $graceful 10 }}
{{- else }}
{{- $t := int .Values.terminationGracePeriodSeconds }}
{{- if lt $t $graceful }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be at least controller.gracefulShutdownTimeout (%s = %ds)" $t .Values.controller.gracefulShutdownTimeout $graceful) }}
{{- end }}
{{- $t }}
{{- end }}
{{- end }}

{{/*
The controller's permissions on namespaced resources: exactly the rules of
config/rbac/role.yaml (generated from the reconcilers' kubebuilder markers,
which grant no Secrets: those are granted per namespace,
rbac.secretNamespaces). Bound cluster-wide by the ClusterRole, or per
namespace by Roles when watchNamespaces is set. Keep in sync with
config/rbac/role.yaml: test/chart compares them, test/security checks both.
*/}}
{{- define "flinkscale.managerRules" -}}
- apiGroups:
  - ""
  resources:
  - configmaps
  - events
  verbs:
  - create
  - patch
- apiGroups:
  - ""
  resources:
  - pods
  verbs:
  - list
  - patch
- apiGroups:
  - apps
  resources:
  - deployments
  verbs:
  - get
  - list
  - watch
- apiGroups:
  - apps
  resources:
  - deployments/scale
  verbs:
  - get
  - update
- apiGroups:
  - flink.apache.org
  resources:
  - flinkdeployments
  - flinksessionjobs
  verbs:
  - get
  - list
  - patch
  - watch
- apiGroups:
  - flinkscale.io
  resources:
  - flinkscalingpolicies
  verbs:
  - create
  - delete
  - get
  - list
  - update
  - watch
- apiGroups:
  - flinkscale.io
  resources:
  - flinkscalingpolicies/status
  verbs:
  - patch
{{- end }}
