{{/*
The release's base name: the release name, or "<release>-pxq" when the
release name does not say pxq already.
*/}}
{{- define "pxq.fullname" -}}
{{- if contains "pxq" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-pxq" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pxq.labels" -}}
app.kubernetes.io/name: pxq
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of a component: include "pxq.selector" (list . "agent"). */}}
{{- define "pxq.selector" -}}
app.kubernetes.io/name: pxq
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "pxq.serviceAccount" -}}
{{- default (include "pxq.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "pxq.tokenSecret" -}}
{{- default (printf "%s-tokens" (include "pxq.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "pxq.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The agents' headless Service's DNS name, which the broker resolves. */}}
{{- define "pxq.agentHost" -}}
{{- printf "%s-agent.%s.svc" (include "pxq.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/*
pxq.bytes turns a Kubernetes quantity in binary units (512Mi, 1Gi, 1Ti)
or plain bytes into bytes, and fails the render on anything else: the
store size and the memory limit are computed from it.
*/}}
{{- define "pxq.bytes" -}}
{{- $q := toString . -}}
{{- $m := regexFindAll "^([0-9]+)(Ki|Mi|Gi|Ti)?$" $q 1 -}}
{{- if not $m -}}
{{- fail (printf "%q is not a size in bytes or in Ki, Mi, Gi or Ti" $q) -}}
{{- end -}}
{{- $n := regexFind "^[0-9]+" $q | int64 -}}
{{- $unit := trimPrefix (regexFind "^[0-9]+" $q) $q -}}
{{- $mult := get (dict "" 1 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776) $unit | int64 -}}
{{- mul $n $mult -}}
{{- end -}}

{{/*
The agent's memory limit: the store's size plus the fixed overhead of
the process beside it (docs/deploy.md, "Memory"), in Mi rounded up.
*/}}
{{- define "pxq.agentMemoryLimit" -}}
{{- $b := add (include "pxq.bytes" .Values.store.size | int64) (include "pxq.bytes" .Values.store.memoryOverhead | int64) -}}
{{- printf "%dMi" (div (add $b 1048575) 1048576) -}}
{{- end -}}

{{/* The Secret of the API's certificate. */}}
{{- define "pxq.apiTLSSecret" -}}
{{- if .Values.tls.certManager.enabled -}}
{{- default (printf "%s-api-tls" (include "pxq.fullname" .)) .Values.tls.api.secretName -}}
{{- else -}}
{{- required "tls.api.enabled needs tls.api.secretName (a kubernetes.io/tls Secret) or tls.certManager.enabled" .Values.tls.api.secretName -}}
{{- end -}}
{{- end -}}

{{/* The Secret of the agents' and the broker's mutual TLS certificate. */}}
{{- define "pxq.agentTLSSecret" -}}
{{- if .Values.tls.certManager.enabled -}}
{{- default (printf "%s-agent-tls" (include "pxq.fullname" .)) .Values.tls.agents.secretName -}}
{{- else -}}
{{- required "tls.agents.enabled needs tls.agents.secretName (tls.crt, tls.key and ca.crt) or tls.certManager.enabled" .Values.tls.agents.secretName -}}
{{- end -}}
{{- end -}}

{{/* The OTel flags common to the agent and the broker. */}}
{{- define "pxq.otelArgs" -}}
{{- with .Values.otel.endpoint }}
- --otel-endpoint={{ . }}
{{- end }}
{{- range .Values.otel.headers }}
- --otel-header={{ . }}
{{- end }}
{{- if or .Values.otel.brokerScripts .Values.otel.agentScripts }}
- --otel-interval={{ .Values.otel.interval }}
{{- end }}
{{- end -}}
