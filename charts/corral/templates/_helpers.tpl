{{- define "corral.name" -}}corral{{- end -}}
{{/* <release>-corral, or the release name alone when it already says corral. */}}
{{- define "corral.fullname" -}}
{{- if contains "corral" .Release.Name -}}
{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else -}}
{{ printf "%s-corral" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end -}}
{{- end -}}
{{- define "corral.labels" -}}
app.kubernetes.io/name: corral
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end -}}
{{- define "corral.selector" -}}
app.kubernetes.io/name: corral
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}
{{- define "corral.serviceAccount" -}}{{ default (include "corral.fullname" .) .Values.serviceAccount.name }}{{- end -}}

{{/* repository:tag, or repository@digest when a digest is given. */}}
{{- define "corral.image" -}}
{{- if .Values.image.digest -}}
{{ printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else -}}
{{ printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end -}}
{{- end -}}

{{/* The Prometheus Operator's API: ServiceMonitor and PrometheusRule are rendered only when it is served. */}}
{{- define "corral.hasPrometheusOperator" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}true{{ end -}}
{{- end -}}

{{/* Checks the schema cannot express (it sees one value at a time). */}}
{{- define "corral.validate" -}}
{{- if eq (int .Values.metrics.port) (int .Values.health.port) -}}
{{- fail (printf "metrics.port and health.port are both %v: give them different ports" .Values.metrics.port) -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service) -}}
{{- fail "metrics.serviceMonitor.enabled needs metrics.service: true (the ServiceMonitor selects that Service)" -}}
{{- end -}}
{{- if and (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) -}}
{{- fail "serviceAccount.create is false: set serviceAccount.name to the existing ServiceAccount the operator runs as" -}}
{{- end -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "replicas %v needs leaderElection.enabled: true (two operators deciding at once would place gangs twice)" .Values.replicas) -}}
{{- end -}}
{{- end -}}

{{/* The leader-election Lease: leaderElection.leaseName, else the release fullname. */}}
{{- define "corral.leaseName" -}}
{{- .Values.leaderElection.leaseName | default (include "corral.fullname" .) -}}
{{- end -}}
