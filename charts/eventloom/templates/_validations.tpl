{{/*
Fail-fast checks of values the JSON schema cannot express (or that deserve a sentence a person can act
on). Every message says what is wrong, with which value, and what to set instead. All problems are
reported at once. Rendered by templates/validate.yaml, so `helm lint`, `helm template` and
`helm install` all stop on them before anything reaches the cluster.
*/}}
{{- define "eventloom.validateValues" -}}
{{- $messages := list -}}
{{- $messages = append $messages (include "eventloom.validate.kafkaBrokers" .) -}}
{{- $messages = append $messages (include "eventloom.validate.workerBrokers" .) -}}
{{- $messages = append $messages (include "eventloom.validate.gatewayTokens" .) -}}
{{- $messages = append $messages (include "eventloom.validate.leaderElection" .) -}}
{{- $messages = append $messages (include "eventloom.validate.serviceMonitor" .) -}}
{{- $messages = without $messages "" -}}
{{- if $messages -}}
{{- printf "\n\nVALUES VALIDATION:\n%s" (join "\n" $messages) | fail -}}
{{- end -}}
{{- end -}}

{{/* `host:port[,host:port...]` */}}
{{- define "eventloom.brokerListPattern" -}}
^[A-Za-z0-9._\[\]:-]+:[0-9]{1,5}(,[A-Za-z0-9._\[\]:-]+:[0-9]{1,5})*$
{{- end -}}

{{- define "eventloom.validate.kafkaBrokers" -}}
{{- $brokers := .Values.kafka.brokers | default "" | toString | trim -}}
{{- if not $brokers -}}
eventloom: kafka.brokers
    kafka.brokers is empty. The operator, gateway and engine cannot start without Kafka.
    Set your bootstrap brokers, e.g. --set kafka.brokers=my-cluster-kafka-bootstrap.kafka.svc:9092
    (Strimzi: the <cluster>-kafka-bootstrap Service; Kafka >= 3.9 with a PLAINTEXT listener).
{{- else if not (regexMatch (include "eventloom.brokerListPattern" .) (nospace $brokers)) -}}
eventloom: kafka.brokers
    kafka.brokers="{{ $brokers }}" is not a comma-separated list of host:port.
    Give every broker its port, e.g. kafka-0.kafka:9092,kafka-1.kafka:9092.
{{- end -}}
{{- end -}}

{{- define "eventloom.validate.workerBrokers" -}}
{{- $brokers := .Values.kafka.workerBrokers | default "" | toString | trim -}}
{{- if and $brokers (not (regexMatch (include "eventloom.brokerListPattern" .) (nospace $brokers))) -}}
eventloom: kafka.workerBrokers
    kafka.workerBrokers="{{ $brokers }}" is not a comma-separated list of host:port.
    Leave it empty to give worker pods kafka.brokers, or list host:port pairs they can reach.
{{- end -}}
{{- end -}}

{{- define "eventloom.validate.gatewayTokens" -}}
{{- if and .Values.gateway.enabled (eq .Values.gateway.auth "token") (not .Values.gateway.tokens.existingSecret) -}}
eventloom: gateway.tokens.existingSecret
    gateway.auth is "token" but gateway.tokens.existingSecret is empty, so the gateway has no tokens file.
    Create the Secret (docs/gateway.md) and name it, e.g.
      printf 'shop-web %s shop\n' "$(openssl rand -hex 32)" > tokens
      kubectl -n {{ .Release.Namespace }} create secret generic eventloom-gateway-tokens --from-file=tokens
      --set gateway.tokens.existingSecret=eventloom-gateway-tokens
    or set gateway.auth=none for a local demo without authentication.
{{- end -}}
{{- end -}}

{{/* Durations are compared in milliseconds; the schema already checked their syntax. */}}
{{- define "eventloom.durationMs" -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]+(ms|h|m|s)" (toString .) -1 -}}
{{- $n := float64 (regexFind "^[0-9]+" .) -}}
{{- $unit := regexFind "(ms|h|m|s)$" . -}}
{{- $factor := dict "ms" 1.0 "s" 1000.0 "m" 60000.0 "h" 3600000.0 -}}
{{- $total = addf $total (mulf $n (index $factor $unit)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{- define "eventloom.validate.leaderElection" -}}
{{- $le := .Values.operator.leaderElection -}}
{{- $lease := include "eventloom.durationMs" $le.leaseDuration | float64 -}}
{{- $renew := include "eventloom.durationMs" $le.renewDeadline | float64 -}}
{{- $retry := include "eventloom.durationMs" $le.retryPeriod | float64 -}}
{{- if not (and (lt $renew $lease) (lt $retry $renew)) -}}
eventloom: operator.leaderElection
    Leader election needs retryPeriod < renewDeadline < leaseDuration (got {{ $le.retryPeriod }} < {{ $le.renewDeadline }} < {{ $le.leaseDuration }}),
    otherwise a healthy leader can lose its lease to a standby. The defaults are 2s < 7s < 10s.
{{- end -}}
{{- end -}}

{{- define "eventloom.validate.serviceMonitor" -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor")) -}}
eventloom: metrics.serviceMonitor.enabled
    metrics.serviceMonitor.enabled is true but the cluster has no monitoring.coreos.com/v1 ServiceMonitor
    (the Prometheus Operator CRDs are not installed). Install them, or set metrics.serviceMonitor.enabled=false
    and rely on the prometheus.io/* pod annotations (metrics.podAnnotations). With `helm template`, pass
    --api-versions monitoring.coreos.com/v1/ServiceMonitor.
{{- end -}}
{{- end -}}
