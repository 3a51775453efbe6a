{{/* Common labels. */}}
{{- define "jetstream.labels" -}}
app.kubernetes.io/name: jetstream
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of the webhook pods. */}}
{{- define "jetstream.webhookSelector" -}}
app.kubernetes.io/name: jetstream
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end -}}

{{/* The image, pinned by digest. */}}
{{- define "jetstream.image" -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- end -}}

{{/* Workload-identity annotation of a service account (argument: its values). */}}
{{- define "jetstream.gcpAnnotation" -}}
{{- if .gcpServiceAccount }}
annotations:
  iam.gke.io/gcp-service-account: {{ .gcpServiceAccount | quote }}
{{- end }}
{{- end -}}
