{{/*
The chart name, or nameOverride.
*/}}
{{- define "gitgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: fullnameOverride, or "<release>-<name>" (just
"<release>" when the release name already contains the chart name). Kept to 52 characters
so that suffixed names ("-selfsigned", "-ca-issuer", "-policies") stay within 63.
*/}}
{{- define "gitgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "gitgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select the webhook pods. Never change them after install: a Deployment's
selector is immutable.
*/}}
{{- define "gitgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gitgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "gitgate.labels" -}}
helm.sh/chart: {{ include "gitgate.chart" . }}
{{ include "gitgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gitgate
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The ServiceAccount the pods run as.
*/}}
{{- define "gitgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gitgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The container image: repository@digest when a digest is given, else repository:tag (tag
defaulting to the chart's appVersion).
*/}}
{{- define "gitgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/*
Names of the Service, of the TLS Secret (serving certificate, key and ca.crt) and of the
Service's DNS name, which the serving certificate is issued for.
*/}}
{{- define "gitgate.serviceName" -}}
{{- include "gitgate.fullname" . }}
{{- end }}

{{- define "gitgate.tlsSecretName" -}}
{{- printf "%s-tls" (include "gitgate.fullname" .) }}
{{- end }}

{{- define "gitgate.serviceDNSName" -}}
{{- printf "%s.%s.svc" (include "gitgate.serviceName" .) .Release.Namespace }}
{{- end }}

{{/*
DNS names of the serving certificate.
*/}}
{{- define "gitgate.certDNSNames" -}}
{{- $svc := include "gitgate.serviceName" . -}}
{{- list $svc (printf "%s.%s" $svc .Release.Namespace) (include "gitgate.serviceDNSName" .) (printf "%s.cluster.local" (include "gitgate.serviceDNSName" .)) | toJson }}
{{- end }}

{{/*
The container port, taken from config.server.listen ("0.0.0.0:8443", "[::]:8443").
*/}}
{{- define "gitgate.containerPort" -}}
{{- $listen := dig "server" "listen" "0.0.0.0:8443" (.Values.config | default dict) | toString }}
{{- $port := splitList ":" $listen | last }}
{{- if not (regexMatch "^[0-9]+$" $port) }}
{{- fail (printf "config.server.listen must end in :PORT, got %q" $listen) }}
{{- end }}
{{- $port }}
{{- end }}

{{/*
The plain-HTTP metrics port: from config.server.metricsListen when set, else metrics.port;
empty when metrics.enabled is false and metricsListen is unset.
*/}}
{{- define "gitgate.metricsPort" -}}
{{- $listen := dig "server" "metricsListen" "" (.Values.config | default dict) | toString }}
{{- if $listen }}
{{- $port := splitList ":" $listen | last }}
{{- if not (regexMatch "^[0-9]+$" $port) }}
{{- fail (printf "config.server.metricsListen must end in :PORT, got %q" $listen) }}
{{- end }}
{{- $port }}
{{- else if .Values.metrics.enabled }}
{{- .Values.metrics.port | int }}
{{- end }}
{{- end }}

{{/*
Git credentials: "true" when they are mounted, and the name of their Secret.
*/}}
{{- define "gitgate.gitCredentials.enabled" -}}
{{- $type := .Values.gitCredentials.type | default "none" }}
{{- if not (has $type (list "none" "basic" "ssh")) }}
{{- fail (printf "gitCredentials.type must be none, basic or ssh, got %q" $type) }}
{{- end }}
{{- if ne $type "none" }}true{{ end }}
{{- end }}

{{- define "gitgate.gitCredentials.secretName" -}}
{{- if .Values.gitCredentials.existingSecret }}
{{- .Values.gitCredentials.existingSecret }}
{{- else }}
{{- printf "%s-git-credentials" (include "gitgate.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Trusted keys: "true" when they are mounted, and the name of their Secret.
*/}}
{{- define "gitgate.trustedKeys.enabled" -}}
{{- if or .Values.trustedKeys.existingSecret .Values.trustedKeys.allowedSigners .Values.trustedKeys.openpgpKeys }}true{{ end }}
{{- end }}

{{- define "gitgate.trustedKeys.secretName" -}}
{{- if .Values.trustedKeys.existingSecret }}
{{- .Values.trustedKeys.existingSecret }}
{{- else }}
{{- printf "%s-trusted-keys" (include "gitgate.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Namespaces the webhook never sees (namespaceSelector NotIn on kubernetes.io/metadata.name).
*/}}
{{- define "gitgate.excludedNamespaces" -}}
{{- $ns := list "kube-system" "kube-public" "kube-node-lease" }}
{{- if .Values.webhook.excludeReleaseNamespace }}
{{- $ns = append $ns .Release.Namespace }}
{{- end }}
{{- range .Values.webhook.excludedNamespaces }}
{{- $ns = append $ns . }}
{{- end }}
{{- $ns | uniq | toJson }}
{{- end }}

{{/*
gitgate.yaml: .Values.config with what the chart knows filled in, where the user did not
set it: the release namespace in exempt.namespaces, the mounted Git credentials, the
mounted trusted keys and the mounted policy directory. An empty repository.url is left
out.
*/}}
{{- define "gitgate.config" -}}
{{- $config := deepCopy (.Values.config | default dict) }}
{{- /* repository */}}
{{- $repo := get $config "repository" | default dict }}
{{- if hasKey $repo "url" }}
{{- if not (get $repo "url") }}
{{- $_ := unset $repo "url" }}
{{- end }}
{{- end }}
{{- if eq (include "gitgate.gitCredentials.enabled" .) "true" }}
{{- $dir := "/etc/gitgate/credentials" }}
{{- $creds := get $repo "credentials" | default dict }}
{{- if eq .Values.gitCredentials.type "basic" }}
{{- if not (get $creds "usernameFile") }}
{{- $_ := set $creds "usernameFile" (printf "%s/%s" $dir .Values.gitCredentials.keys.username) }}
{{- end }}
{{- if not (get $creds "passwordFile") }}
{{- $_ := set $creds "passwordFile" (printf "%s/%s" $dir .Values.gitCredentials.keys.password) }}
{{- end }}
{{- else if eq .Values.gitCredentials.type "ssh" }}
{{- if not (get $creds "sshKeyFile") }}
{{- $_ := set $creds "sshKeyFile" (printf "%s/%s" $dir .Values.gitCredentials.keys.sshPrivateKey) }}
{{- end }}
{{- if not (get $creds "knownHostsFile") }}
{{- $_ := set $creds "knownHostsFile" (printf "%s/%s" $dir .Values.gitCredentials.keys.knownHosts) }}
{{- end }}
{{- end }}
{{- $_ := set $repo "credentials" $creds }}
{{- end }}
{{- if $repo }}
{{- $_ := set $config "repository" $repo }}
{{- end }}
{{- /* approval: trusted keys given inline */}}
{{- if not .Values.trustedKeys.existingSecret }}
{{- $approval := get $config "approval" | default dict }}
{{- if and .Values.trustedKeys.allowedSigners (not (get $approval "allowedSigners")) }}
{{- $_ := set $approval "allowedSigners" "/etc/gitgate/keys/allowed_signers" }}
{{- end }}
{{- if and .Values.trustedKeys.openpgpKeys (not (get $approval "openpgpKeys")) }}
{{- $files := list }}
{{- range $name := keys .Values.trustedKeys.openpgpKeys | sortAlpha }}
{{- $files = append $files (printf "/etc/gitgate/keys/%s" $name) }}
{{- end }}
{{- $_ := set $approval "openpgpKeys" $files }}
{{- end }}
{{- if $approval }}
{{- $_ := set $config "approval" $approval }}
{{- end }}
{{- end }}
{{- /* policies: the mounted policyFiles directory */}}
{{- if .Values.policyFiles }}
{{- $policies := get $config "policies" | default dict }}
{{- $paths := get $policies "paths" | default list }}
{{- if not (has "/etc/gitgate/policies" $paths) }}
{{- $paths = append $paths "/etc/gitgate/policies" }}
{{- end }}
{{- $_ := set $policies "paths" $paths }}
{{- $_ := set $config "policies" $policies }}
{{- end }}
{{- /* server: the plain-HTTP metrics listener */}}
{{- if .Values.metrics.enabled }}
{{- $server := get $config "server" | default dict }}
{{- if not (get $server "metricsListen") }}
{{- $_ := set $server "metricsListen" (printf "0.0.0.0:%d" (.Values.metrics.port | int)) }}
{{- end }}
{{- $_ := set $config "server" $server }}
{{- end }}
{{- /* exempt: the release namespace */}}
{{- if .Values.webhook.excludeReleaseNamespace }}
{{- $exempt := get $config "exempt" | default dict }}
{{- $namespaces := get $exempt "namespaces" | default list }}
{{- if not (has .Release.Namespace $namespaces) }}
{{- $namespaces = append $namespaces .Release.Namespace }}
{{- end }}
{{- $_ := set $exempt "namespaces" $namespaces }}
{{- $_ := set $config "exempt" $exempt }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
The resource (plural) of a kind, as the API server names most: Ingress -> ingresses,
NetworkPolicy -> networkpolicies. A kind named otherwise takes `resource:` in the values.
*/}}
{{- define "gitgate.plural" -}}
{{- $k := lower . -}}
{{- if or (hasSuffix "s" $k) (hasSuffix "x" $k) (hasSuffix "ch" $k) (hasSuffix "sh" $k) -}}
{{- printf "%ses" $k -}}
{{- else if and (hasSuffix "y" $k) (not (regexMatch "[aeiou]y$" $k)) -}}
{{- printf "%sies" (trimSuffix "y" $k) -}}
{{- else -}}
{{- printf "%ss" $k -}}
{{- end -}}
{{- end }}

{{/*
The kinds synced into data.inventory, as a JSON list of {group, version, kind, resource}:
config.inventory.sync, and the sync lists of Gatekeeper Config (spec.sync.syncOnly) and
SyncSet (spec.gvks) documents in policyFiles.
*/}}
{{- define "gitgate.syncedKinds" -}}
{{- $kinds := list }}
{{- $config := .Values.config | default dict }}
{{- range (dig "inventory" "sync" list $config) }}
{{- $kinds = append $kinds . }}
{{- end }}
{{- range $name, $content := .Values.policyFiles }}
{{- if or (hasSuffix ".yaml" $name) (hasSuffix ".yml" $name) }}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" ($content | toString) -1 }}
{{- $obj := fromYaml $doc }}
{{- if kindIs "map" $obj }}
{{- $api := get $obj "apiVersion" | default "" | toString }}
{{- $kind := get $obj "kind" | default "" | toString }}
{{- if and (eq $kind "Config") (hasPrefix "config.gatekeeper.sh/" $api) }}
{{- range (dig "spec" "sync" "syncOnly" list $obj) }}
{{- $kinds = append $kinds . }}
{{- end }}
{{- else if and (eq $kind "SyncSet") (hasPrefix "syncset.gatekeeper.sh/" $api) }}
{{- range (dig "spec" "gvks" list $obj) }}
{{- $kinds = append $kinds . }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $kinds }}
{{- end }}

{{/*
The ClusterRole's rules: what the configuration reads of the cluster, nothing more.
*/}}
{{- define "gitgate.rbacRules" -}}
{{- $config := .Values.config | default dict }}
{{- $enabled := dig "cluster" "enabled" nil $config }}
{{- $rules := list }}
{{- if not (and (kindIs "bool" $enabled) (not $enabled)) }}
{{- /* Namespaces, for namespaceSelector */}}
{{- $mode := .Values.rbac.namespaces | toString }}
{{- $namespaces := eq $mode "true" }}
{{- if eq $mode "auto" }}
{{- range $name, $content := .Values.policyFiles }}
{{- if contains "namespaceSelector" ($content | toString) }}
{{- $namespaces = true }}
{{- end }}
{{- end }}
{{- end }}
{{- if $namespaces }}
{{- $rules = append $rules (dict "apiGroups" (list "") "resources" (list "namespaces") "verbs" (list "get" "list" "watch")) }}
{{- end }}
{{- /* The synced kinds */}}
{{- $synced := include "gitgate.syncedKinds" . | fromJsonArray }}
{{- range $synced }}
{{- $resource := .resource | default (include "gitgate.plural" .kind) }}
{{- $rules = append $rules (dict "apiGroups" (list (.group | default "")) "resources" (list $resource) "verbs" (list "get" "list" "watch")) }}
{{- end }}
{{- /* The audit */}}
{{- $interval := dig "audit" "interval" nil $config }}
{{- if $interval }}
{{- $kinds := dig "audit" "kinds" list $config }}
{{- if not $kinds }}
{{- fail "config.audit.interval needs config.audit.kinds: the chart grants list on exactly the audited kinds" }}
{{- end }}
{{- range $kinds }}
{{- $resource := .resource | default (include "gitgate.plural" .kind) }}
{{- $rules = append $rules (dict "apiGroups" (list (.group | default "")) "resources" (list $resource) "verbs" (list "list")) }}
{{- end }}
{{- if dig "audit" "policyReports" false $config }}
{{- $rules = append $rules (dict "apiGroups" (list "wgpolicyk8s.io") "resources" (list "policyreports" "clusterpolicyreports") "verbs" (list "get" "create" "update")) }}
{{- end }}
{{- end }}
{{- /* CRDs: scope and schema defaults for provenance, when the cluster is read at all */}}
{{- $url := dig "repository" "url" "" $config }}
{{- if and $url (or $rules (and (kindIs "bool" $enabled) $enabled)) }}
{{- $rules = append $rules (dict "apiGroups" (list "apiextensions.k8s.io") "resources" (list "customresourcedefinitions") "verbs" (list "get" "list" "watch")) }}
{{- /* The classes the admission plugins pick from (a default IngressClass, StorageClass,
PriorityClass explains the class an object gets at CREATE). */}}
{{- $rules = append $rules (dict "apiGroups" (list "networking.k8s.io") "resources" (list "ingressclasses") "verbs" (list "get" "list" "watch")) }}
{{- $rules = append $rules (dict "apiGroups" (list "storage.k8s.io") "resources" (list "storageclasses") "verbs" (list "get" "list" "watch")) }}
{{- $rules = append $rules (dict "apiGroups" (list "scheduling.k8s.io") "resources" (list "priorityclasses") "verbs" (list "get" "list" "watch")) }}
{{- end }}
{{- end }}
{{- $rules = concat $rules (.Values.rbac.extraRules | default list) }}
{{- if $rules }}
{{- toYaml $rules }}
{{- else }}
[]
{{- end }}
{{- end }}

{{/*
What the two webhooks of the ValidatingWebhookConfiguration (validate.gitgate.dev and
status.validate.gitgate.dev) share: the Service, path and caBundle, failurePolicy,
matchPolicy, namespaceSelector, objectSelector and matchConditions. Called with
(dict "root" $ "caBundle" $caBundle); written at indent 0, to be nindented.
*/}}
{{- define "gitgate.webhookCommon" -}}
{{- $root := .root -}}
admissionReviewVersions: ["v1"]
sideEffects: None
failurePolicy: {{ $root.Values.webhook.failurePolicy }}
matchPolicy: {{ $root.Values.webhook.matchPolicy }}
clientConfig:
  service:
    name: {{ include "gitgate.serviceName" $root }}
    namespace: {{ $root.Release.Namespace }}
    path: /validate
    port: {{ $root.Values.service.port }}
  {{- if not $root.Values.certManager.enabled }}
  caBundle: {{ .caBundle | quote }}
  {{- end }}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: {{ include "gitgate.excludedNamespaces" $root }}
    {{- with $root.Values.webhook.namespaceSelectorExpressions }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- with $root.Values.webhook.objectSelector }}
objectSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if and $root.Values.webhook.matchConditions (semverCompare ">=1.28.0-0" $root.Capabilities.KubeVersion.Version) }}
matchConditions:
  {{- toYaml $root.Values.webhook.matchConditions | nindent 2 }}
{{- end }}
{{- end }}
