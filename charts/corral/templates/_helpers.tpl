{{- define "corral.name" -}}corral{{- end -}}
{{- define "corral.fullname" -}}{{ printf "%s-corral" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "corral.labels" -}}
app.kubernetes.io/name: corral
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "corral.selector" -}}
app.kubernetes.io/name: corral
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "corral.serviceAccount" -}}{{ default (include "corral.fullname" .) .Values.serviceAccount.name }}{{- end -}}
