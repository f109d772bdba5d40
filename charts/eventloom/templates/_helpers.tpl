{{/*
Names and labels. Everything here is a pure function of the release and values.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "eventloom.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
`<release>-<chart>` (just `<release>` when it already contains the chart name), or fullnameOverride.
Truncated to 52 so that `<fullname>-operator` and friends stay within 63 characters.
*/}}
{{- define "eventloom.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* `<fullname>-<component>`: names of namespaced objects. Call with (dict "root" $ "component" "operator"). */}}
{{- define "eventloom.componentName" -}}
{{- printf "%s-%s" (include "eventloom.fullname" .root) .component -}}
{{- end -}}

{{/*
Names of cluster-scoped objects (ClusterRoles, ClusterRoleBindings): `<fullname>-<namespace>-<component>`.
A release name is unique only within its namespace, so the namespace is part of the name and two
releases (or parallel test installs) never fight over one ClusterRole.
*/}}
{{- define "eventloom.clusterName" -}}
{{- printf "%s-%s-%s" (include "eventloom.fullname" .root) .root.Release.Namespace .component | trunc 253 | trimSuffix "-" -}}
{{- end -}}

{{/* Chart label value. */}}
{{- define "eventloom.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels on every object. `app.kubernetes.io/managed-by` is Helm: the operator selects the children it
owns by `app.kubernetes.io/managed-by=eventloom`, and the chart's own Deployments must not match.
*/}}
{{- define "eventloom.labels" -}}
helm.sh/chart: {{ include "eventloom.chart" . }}
{{ include "eventloom.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: eventloom
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels that select the release's pods; immutable once installed. */}}
{{- define "eventloom.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eventloom.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of one component's objects. Call with (dict "root" $ "component" "operator"). */}}
{{- define "eventloom.componentLabels" -}}
{{ include "eventloom.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Selector labels of one component's pods. Call with (dict "root" $ "component" "operator"). */}}
{{- define "eventloom.componentSelectorLabels" -}}
{{ include "eventloom.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* ServiceAccount name of a component. Call with (dict "root" $ "component" "operator"). */}}
{{- define "eventloom.serviceAccountName" -}}
{{- $sa := (index .root.Values .component).serviceAccount -}}
{{- if $sa.create -}}
{{- default (include "eventloom.componentName" .) $sa.name -}}
{{- else -}}
{{- default "default" $sa.name -}}
{{- end -}}
{{- end -}}

{{/* The image reference: repository@digest, or repository:tag (tag defaults to appVersion). */}}
{{- define "eventloom.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag | toString) -}}
{{- end -}}
{{- end -}}

{{/* Name of the operator's leader-election Lease (in the release namespace). */}}
{{- define "eventloom.leaseName" -}}
{{- include "eventloom.componentName" (dict "root" . "component" "operator") -}}
{{- end -}}

{{/* Environment shared by the gateway and engine: Kafka, topics, namespace scope, tracing. */}}
{{- define "eventloom.runtimeEnv" -}}
- name: KAFKA_BROKERS
  value: {{ .root.Values.kafka.brokers | quote }}
- name: EVENTLOOM_TOPIC_PREFIX
  value: {{ .root.Values.kafka.topicPrefix | quote }}
{{- with .root.Values.watchNamespace }}
- name: EVENTLOOM_NAMESPACE
  value: {{ . | quote }}
{{- end }}
- name: LOG_LEVEL
  value: {{ (index .root.Values .component).logLevel | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "eventloom-%s" .component | quote }}
{{- if .root.Values.tracing.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .root.Values.tracing.otlpEndpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ .root.Values.tracing.protocol | quote }}
{{- end }}
{{- end -}}

{{/* Pod-level settings shared by every component. Call with (dict "root" $ "component" "operator"). */}}
{{- define "eventloom.podSpecCommon" -}}
{{- $c := index .root.Values .component -}}
serviceAccountName: {{ include "eventloom.serviceAccountName" . }}
automountServiceAccountToken: true
enableServiceLinks: false
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
affinity:
{{- if $c.affinity }}
  {{- toYaml $c.affinity | nindent 2 }}
{{- else }}
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "eventloom.componentSelectorLabels" . | nindent 14 }}
{{- end }}
{{- with $c.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod annotations: Prometheus scrape hints and the user's. Call with (dict "root" $ "component" "operator" "port" 8081). */}}
{{- define "eventloom.podAnnotations" -}}
{{- $c := index .root.Values .component -}}
{{- if .root.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with $c.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The container's image, pull policy and security context. */}}
{{- define "eventloom.containerCommon" -}}
image: {{ include "eventloom.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
{{- end -}}

{{/*
Container args: the global node flags, the component's own (optional "extra"), then the entry file.
Call with (dict "root" $ "entry" "operator/main.ts" "extra" .Values.operator.nodeArgs).
*/}}
{{- define "eventloom.args" -}}
{{- range .root.Values.nodeArgs }}
- {{ . | quote }}
{{- end }}
{{- range (.extra | default list) }}
- {{ . | quote }}
{{- end }}
- {{ .entry | quote }}
{{- end -}}
