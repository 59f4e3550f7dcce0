{{/* Names, labels and the pieces every Deployment shares. */}}

{{- define "switchboard.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's prefix of every object name; short enough that
"<fullname>-presence-metrics" and similar stay within 63 characters. */}}
{{- define "switchboard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "switchboard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of one service; call with (dict "root" $ "component" "c2s"). */}}
{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{- define "switchboard.labels" -}}
helm.sh/chart: {{ include "switchboard.chart" .root }}
{{ include "switchboard.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: switchboard
{{- end -}}

{{- define "switchboard.image" -}}
{{- $tag := .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s/switchboard-%s:%s" .root.Values.image.registry .component $tag -}}
{{- end -}}

{{- define "switchboard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "switchboard.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the Postgres DSN, and its key. */}}
{{- define "switchboard.postgresSecret" -}}
{{- .Values.postgres.existingSecret | default (printf "%s-postgres" (include "switchboard.fullname" .)) -}}
{{- end -}}
{{- define "switchboard.postgresSecretKey" -}}
{{- if .Values.postgres.existingSecret -}}{{ .Values.postgres.existingSecretKey }}{{- else -}}dsn{{- end -}}
{{- end -}}

{{/* The Secret with tls.crt, tls.key and ca.crt for gRPC mutual TLS. */}}
{{- define "switchboard.grpcTLSSecret" -}}
{{- .Values.grpcTLS.existingSecret | default (printf "%s-grpc-tls" (include "switchboard.fullname" .)) -}}
{{- end -}}

{{/* The Secret with the c2s certificate; empty when c2s makes its own. */}}
{{- define "switchboard.c2sTLSSecret" -}}
{{- if .Values.c2sTLS.existingSecret -}}
{{- .Values.c2sTLS.existingSecret -}}
{{- else if .Values.c2sTLS.certManager.enabled -}}
{{- printf "%s-c2s-tls" (include "switchboard.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* In-cluster address of a service's gRPC port. */}}
{{- define "switchboard.grpcAddr" -}}
{{- printf "%s-%s.%s.svc:%v" (include "switchboard.fullname" .root) .component .root.Release.Namespace .port -}}
{{- end -}}

{{/* The grace period must outlast the preStop sleep plus the shutdown
bound, or the kubelet kills the process mid-drain. */}}
{{- define "switchboard.checkGrace" -}}
{{- $v := index .root.Values .component -}}
{{- /* c2s stops in two phases bounded by the shutdown timeout: the drain
of its clients, then the stop of the process. */ -}}
{{- $phases := ternary 2 1 (eq .component "c2s") -}}
{{- $need := add $v.preStopSleepSeconds (mul $phases $v.shutdownTimeoutSeconds) 5 -}}
{{- if lt (int $v.terminationGracePeriodSeconds) (int $need) -}}
{{- fail (printf "%s.terminationGracePeriodSeconds (%v) must be at least preStopSleepSeconds + %v x shutdownTimeoutSeconds + 5 = %v" .component $v.terminationGracePeriodSeconds $phases $need) -}}
{{- end -}}
{{- end -}}

{{/* Environment every service reads; call with (dict "root" $ "component" "c2s"). */}}
{{- define "switchboard.commonEnv" -}}
- name: SWITCHBOARD_NODE_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- if .root.Values.grpcTLS.enabled }}
- name: SWITCHBOARD_GRPC_TLS_CERT
  value: /etc/switchboard/grpc-tls/tls.crt
- name: SWITCHBOARD_GRPC_TLS_KEY
  value: /etc/switchboard/grpc-tls/tls.key
- name: SWITCHBOARD_GRPC_TLS_CA
  value: /etc/switchboard/grpc-tls/ca.crt
{{- end }}
{{- with (index .root.Values .component).extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes every service mounts: a writable /tmp (the root filesystem is
read-only) and the gRPC TLS Secret when mutual TLS is on. */}}
{{- define "switchboard.commonVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if .Values.grpcTLS.enabled }}
- name: grpc-tls
  secret:
    secretName: {{ include "switchboard.grpcTLSSecret" . }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "switchboard.commonMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.grpcTLS.enabled }}
- name: grpc-tls
  mountPath: /etc/switchboard/grpc-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* Liveness on /healthz, readiness (dependencies reachable) on /readyz. */}}
{{- define "switchboard.probes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 2
  failureThreshold: 30
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end -}}

{{/* Pod-level settings every service shares; call with (dict "root" $ "component" "c2s"). */}}
{{- define "switchboard.podCommon" -}}
serviceAccountName: {{ include "switchboard.serviceAccountName" .root }}
automountServiceAccountToken: false
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
securityContext:
{{ toYaml .root.Values.podSecurityContext | indent 2 }}
terminationGracePeriodSeconds: {{ (index .root.Values .component).terminationGracePeriodSeconds }}
{{- with .root.Values.nodeSelector }}
nodeSelector:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .root.Values.tolerations }}
tolerations:
{{ toYaml . | indent 2 }}
{{- end }}
{{- if eq .root.Values.podAntiAffinity "soft" }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
{{ include "switchboard.selectorLabels" . | indent 14 }}
{{- else if eq .root.Values.podAntiAffinity "hard" }}
affinity:
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
{{ include "switchboard.selectorLabels" . | indent 12 }}
{{- end }}
{{- end -}}

{{/* Container-level settings every service shares. */}}
{{- define "switchboard.containerCommon" -}}
image: {{ include "switchboard.image" . }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
securityContext:
{{ toYaml .root.Values.securityContext | indent 2 }}
resources:
{{ toYaml (index .root.Values .component).resources | indent 2 }}
{{- $v := index .root.Values .component }}
{{- if gt (int $v.preStopSleepSeconds) 0 }}
lifecycle:
  preStop:
    sleep:
      seconds: {{ $v.preStopSleepSeconds }}
{{- end }}
{{- end -}}

{{/* NetworkPolicy rule opening the health port 8080. */}}
{{- define "switchboard.healthRule" -}}
- ports:
    - port: 8080
      protocol: TCP
  {{- with .Values.networkPolicy.healthFrom }}
  from:
{{ toYaml . | indent 4 }}
  {{- end }}
{{- end -}}

{{/* Settings that only make sense together. */}}
{{- define "switchboard.validate" -}}
{{- if and .Values.grpcTLS.enabled (not .Values.grpcTLS.existingSecret) (not .Values.grpcTLS.certManager.enabled) -}}
{{- fail "grpcTLS.enabled needs grpcTLS.existingSecret or grpcTLS.certManager.enabled" -}}
{{- end -}}
{{- if and .Values.c2sTLS.existingSecret .Values.c2sTLS.certManager.enabled -}}
{{- fail "set c2sTLS.existingSecret or c2sTLS.certManager.enabled, not both" -}}
{{- end -}}
{{- $seen := dict .Values.domain true -}}
{{- range .Values.domains -}}
{{- if hasKey $seen .name -}}
{{- fail (printf "domains: %s is listed twice (or is the release's domain)" .name) -}}
{{- end -}}
{{- $_ := set $seen .name true -}}
{{- if and .existingSecret .certManager -}}
{{- fail (printf "domains: %s: set existingSecret or certManager, not both" .name) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.grpcTLS.existingSecret .Values.grpcTLS.certManager.enabled -}}
{{- fail "set grpcTLS.existingSecret or grpcTLS.certManager.enabled, not both" -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the admin API's tokens. */}}
{{- define "switchboard.adminSecret" -}}
{{- .Values.admin.existingSecret | default (printf "%s-admin" (include "switchboard.fullname" .)) -}}
{{- end -}}

{{/* Every XMPP domain served, comma-separated: domain first, then
domains[].name. */}}
{{- define "switchboard.domainList" -}}
{{- $names := list .Values.domain -}}
{{- range .Values.domains }}{{ $names = append $names .name }}{{ end -}}
{{- join "," $names -}}
{{- end -}}

{{/* The Secret of an entry of .Values.domains (dict "root" $ "d" entry);
empty when the domain has no certificate of its own. */}}
{{- define "switchboard.domainSecret" -}}
{{- if .d.existingSecret -}}
{{- .d.existingSecret -}}
{{- else if .d.certManager -}}
{{- printf "%s-domain-%s" (include "switchboard.fullname" .root) (replace "." "-" .d.name) | trunc 253 -}}
{{- end -}}
{{- end -}}

{{/* "true" when some domain has a certificate of its own (then c2s and
s2s get SWITCHBOARD_CERT_DIR). */}}
{{- define "switchboard.hasDomainCerts" -}}
{{- range .Values.domains }}{{ if or .existingSecret .certManager }}true{{ end }}{{ end -}}
{{- end -}}

{{/* The volume mounts of the domains' certificates: one directory per
domain under /etc/switchboard/certs, a whole Secret each (not subPath),
so that the kubelet's updates reach the pod and c2s and s2s reload them. */}}
{{- define "switchboard.domainCertMounts" -}}
{{- range $i, $d := .Values.domains }}
{{- if include "switchboard.domainSecret" (dict "root" $ "d" $d) }}
- name: domain-cert-{{ $i }}
  mountPath: /etc/switchboard/certs/{{ $d.name }}
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{- define "switchboard.domainCertVolumes" -}}
{{- range $i, $d := .Values.domains }}
{{- with include "switchboard.domainSecret" (dict "root" $ "d" $d) }}
- name: domain-cert-{{ $i }}
  secret:
    secretName: {{ . }}
    defaultMode: 0440
{{- end }}
{{- end }}
{{- end -}}
