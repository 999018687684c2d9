{{/* Names, labels and the values every template derives from. */}}

{{- define "apikey-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release fullname. Namespaced and cluster-scoped names start with it, so two releases never
clash on a ClusterRole.
*/}}
{{- define "apikey-operator.fullname" -}}
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

{{- define "apikey-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "apikey-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: apikey-operator
{{- with .Values.global.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "controller"). */}}
{{- define "apikey-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "apikey-operator.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "apikey-operator.componentLabels" -}}
{{ include "apikey-operator.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Fixed names: the programs use them as constants, whatever the release is called. */}}
{{- define "apikey-operator.signingKeysSecret" -}}apikey-operator-signing-keys{{- end }}
{{- define "apikey-operator.leaderElectionLease" -}}apikey-operator-controller{{- end }}

{{/*
The name of a ServiceAccount of serviceAccount.<key>: its name, else <fullname>-<suffix> when the
chart creates it; an existing one (create: false) must be named. Include with
(dict "ctx" $ "key" "controller" "suffix" "controller").
*/}}
{{- define "apikey-operator.serviceAccountName" -}}
{{- $sa := get .ctx.Values.serviceAccount .key -}}
{{- if $sa.create -}}
{{ $sa.name | default (printf "%s-%s" (include "apikey-operator.fullname" .ctx) .suffix) }}
{{- else -}}
{{ required (printf "serviceAccount.%s.name must name an existing ServiceAccount when serviceAccount.%s.create is false" .key .key) $sa.name }}
{{- end -}}
{{- end }}

{{- define "apikey-operator.controllerServiceAccount" -}}
{{ include "apikey-operator.serviceAccountName" (dict "ctx" . "key" "controller" "suffix" "controller") }}
{{- end }}

{{/*
The ServiceAccount the token server runs as, in both modes: in sidecar mode the controller requests its
token (TokenRequest) and hands it to the token-server container, which never holds the controller's rights.
*/}}
{{- define "apikey-operator.tokenServerServiceAccount" -}}
{{ include "apikey-operator.serviceAccountName" (dict "ctx" . "key" "tokenServer" "suffix" "token-server") }}
{{- end }}

{{/* The console's ServiceAccount: no RBAC is bound to it, and its pod mounts no token of it. */}}
{{- define "apikey-operator.consoleServiceAccount" -}}
{{ include "apikey-operator.serviceAccountName" (dict "ctx" . "key" "console" "suffix" "console") }}
{{- end }}

{{/* The console's public URL: console.publicURL, else from its Ingress host. */}}
{{- define "apikey-operator.consolePublicURL" -}}
{{- $ing := .Values.console.ingress }}
{{- if .Values.console.publicURL }}
{{- .Values.console.publicURL | trimSuffix "/" }}
{{- else if and $ing.enabled $ing.host }}
{{- printf "%s://%s" (ternary "https" "http" (gt (len $ing.tls) 0)) $ing.host }}
{{- else }}
{{- fail "console.publicURL must be set (or console.ingress.host): the URL people open the console at, whose /auth/callback the identity provider redirects to" }}
{{- end }}
{{- end }}

{{/* The pods the token Service selects: the token server's own, or the controller's in sidecar mode. */}}
{{- define "apikey-operator.tokenServerComponent" -}}
{{- if eq .Values.tokenServer.mode "deployment" }}token-server{{ else }}controller{{ end }}
{{- end }}

{{/* Service names are DNS labels: at most 63 characters. */}}
{{- define "apikey-operator.tokenServiceName" -}}
{{- printf "%s-token" (include "apikey-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* http or https: what the token port speaks. */}}
{{- define "apikey-operator.tokenScheme" -}}
{{- if .Values.tokenServer.tls.enabled }}https{{ else }}http{{ end }}
{{- end }}

{{/* The token Service's URL inside the cluster. */}}
{{- define "apikey-operator.inClusterTokenBase" -}}
{{- printf "%s://%s.%s.svc:%v" (include "apikey-operator.tokenScheme" .) (include "apikey-operator.tokenServiceName" .) .Release.Namespace .Values.tokenServer.service.port }}
{{- end }}

{{/*
The issuer: issuerURL; else the public URL of the ingress or HTTPRoute, where verifiers outside the
cluster reach it; else the token Service.
*/}}
{{- define "apikey-operator.issuerURL" -}}
{{- $ingress := .Values.tokenServer.ingress }}
{{- $route := .Values.tokenServer.httpRoute }}
{{- if .Values.issuerURL }}
{{- .Values.issuerURL }}
{{- else if and $ingress.enabled $ingress.host }}
{{- printf "%s://%s" (ternary "https" "http" (gt (len $ingress.tls) 0)) $ingress.host }}
{{- else if and $route.enabled $route.hostnames }}
{{- printf "https://%s" (first $route.hostnames) }}
{{- else }}
{{- include "apikey-operator.inClusterTokenBase" . }}
{{- end }}
{{- end }}

{{- define "apikey-operator.tokenURL" -}}
{{- .Values.tokenURL | default (printf "%s/oauth/token" (include "apikey-operator.inClusterTokenBase" .)) }}
{{- end }}

{{/* "true" when the operator makes the token server's certificate: TLS on, neither cert-manager nor a Secret of the user's. */}}
{{- define "apikey-operator.tlsGenerated" -}}
{{- $tls := .Values.tokenServer.tls }}
{{- if and $tls.enabled (not $tls.certManager.enabled) (not $tls.secretName) }}true{{ end }}
{{- end }}

{{/* The DNS names of the token server's certificate: the token Service's, and the ingress host. */}}
{{- define "apikey-operator.tokenDNSNames" -}}
{{- $svc := include "apikey-operator.tokenServiceName" . }}
{{- $names := list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) }}
{{- with .Values.tokenServer.ingress.host }}{{ $names = append $names . }}{{ end }}
{{- /* And this machine's names, for `kubectl port-forward` with the CA bundle (nothing else can get a certificate of this CA). */}}
{{- $names = concat $names (list "localhost" "127.0.0.1") }}
{{- join "," $names }}
{{- end }}

{{/* The TLS Secret the token server serves. */}}
{{- define "apikey-operator.tokenTLSSecret" -}}
{{- .Values.tokenServer.tls.secretName | default (printf "%s-token-tls" (include "apikey-operator.fullname" .)) }}
{{- end }}

{{- define "apikey-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Binds the ClusterRole .name to the ServiceAccount .serviceAccount: cluster-wide with a
ClusterRoleBinding, or, when watchNamespaces is set, with a RoleBinding in each watched namespace
and nowhere else. Include with (dict "ctx" $ "name" ... "serviceAccount" ... "component" ...).
*/}}
{{- define "apikey-operator.namespacedRightsBindings" -}}
{{- $ctx := .ctx }}
{{- range $ns := ($ctx.Values.watchNamespaces | default (list "")) }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ if $ns }}RoleBinding{{ else }}ClusterRoleBinding{{ end }}
metadata:
  name: {{ $.name }}
  {{- with $ns }}
  namespace: {{ . }}
  {{- end }}
  labels:
    {{- include "apikey-operator.componentLabels" (dict "ctx" $ctx "component" $.component) | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ $.name }}
subjects:
  - kind: ServiceAccount
    name: {{ $.serviceAccount }}
    namespace: {{ $ctx.Release.Namespace }}
{{- end }}
{{- end }}

{{/* Environment both programs read: their pod's name and namespace, through the downward API. */}}
{{- define "apikey-operator.podEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end }}

{{/*
The --pkcs11-* flags of both programs when signing.pkcs11.enabled (docs/operations/hsm.md); the PIN is
a file mounted from signing.pkcs11.pinSecret, never a flag value or an environment variable.
*/}}
{{- define "apikey-operator.pkcs11Args" -}}
{{- with .Values.signing.pkcs11 }}
{{- if .enabled }}
{{- if not .module }}{{ fail "signing.pkcs11.module must be the path of the PKCS#11 library in the containers" }}{{ end }}
{{- if eq (empty .tokenLabel) (empty .tokenSerial) }}{{ fail "signing.pkcs11 needs exactly one of tokenLabel and tokenSerial" }}{{ end }}
{{- if not .pinSecret.name }}{{ fail "signing.pkcs11.pinSecret.name must name the Secret holding the PIN" }}{{ end }}
- --pkcs11-module={{ .module }}
{{- if .tokenLabel }}
- --pkcs11-token-label={{ .tokenLabel }}
{{- else }}
- --pkcs11-token-serial={{ .tokenSerial }}
{{- end }}
- --pkcs11-pin-file=/etc/apikey-operator/pkcs11/pin
- --pkcs11-key-label-prefix={{ .keyLabelPrefix }}
- --pkcs11-sessions={{ .sessions }}
{{- end }}
{{- end }}
{{- end }}

{{/* The PIN file and the module's volumes, in the controller and token-server containers. */}}
{{- define "apikey-operator.pkcs11Mounts" -}}
{{- if .Values.signing.pkcs11.enabled }}
- name: pkcs11-pin
  mountPath: /etc/apikey-operator/pkcs11
  readOnly: true
{{- with .Values.signing.pkcs11.volumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Environment variables the PKCS#11 module reads. */}}
{{- define "apikey-operator.pkcs11Env" -}}
{{- if .Values.signing.pkcs11.enabled }}
{{- with .Values.signing.pkcs11.env }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/* The token-server container: the sidecar of the controller pod, or its own Deployment's. */}}
{{- define "apikey-operator.tokenServerContainer" -}}
- name: token-server
  image: {{ include "apikey-operator.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
    - token-server
    - --port={{ .Values.tokenServer.port }}
    - --metrics-port={{ .Values.tokenServer.metricsPort }}
    - --issuer={{ include "apikey-operator.issuerURL" . }}
    {{- /* DPoP proofs name the URL the client posted to: in-cluster clients use TOKEN_URL, which differs from the issuer's when the issuer is public. */}}
    {{- $tokenURL := include "apikey-operator.tokenURL" . }}
    {{- if ne $tokenURL (printf "%s/oauth/token" (include "apikey-operator.issuerURL" . | trimSuffix "/")) }}
    - --dpop-token-urls={{ $tokenURL }}
    {{- end }}
    - --user-token-ttl={{ .Values.tokenServer.userTokenTTL }}
    {{- with .Values.tokenServer.maxCacheStaleness }}
    - --max-cache-staleness={{ . }}
    {{- end }}
    - --operator-namespace={{ .Release.Namespace }}
    - --log-level={{ .Values.logLevel }}
    {{- with .Values.watchNamespaces }}
    - --namespaces={{ join "," . }}
    {{- end }}
    {{- with .Values.audiences }}
    - --audiences={{ join "," . }}
    {{- end }}
    {{- with .Values.tokenServer.trustedProxies }}
    - --trusted-proxies={{ join "," . }}
    {{- end }}
    {{- with .Values.tokenServer.auditLog }}
    {{- if .enabled }}
    - --audit-log-path={{ .path }}
    - --audit-log-maxsize={{ .maxSize }}
    - --audit-log-maxbackup={{ .maxBackup }}
    {{- end }}
    {{- end }}
    {{- if .Values.tokenServer.insecureBroadTrustedProxies }}
    - --insecure-broad-trusted-proxies=true
    {{- end }}
    {{- if .Values.tokenServer.tls.enabled }}
    - --tls-cert-file=/etc/apikey-operator/tls/tls.crt
    - --tls-private-key-file=/etc/apikey-operator/tls/tls.key
    {{- end }}
    {{- with .Values.tokenServer.tokenReviewAudiences }}
    - --token-review-audiences={{ join "," . }}
    {{- end }}
    {{- with .Values.federation.issuers }}
    - --federation-issuers={{ join "," . }}
    {{- end }}
    {{- if .Values.federation.caBundle }}
    - --federation-ca-file=/etc/apikey-operator/federation-ca/ca.crt
    {{- end }}
    {{- with .Values.secretScanning.keysUrl }}
    - --secret-scanning-keys-url={{ . }}
    {{- end }}
    {{- if and .Values.secretScanning.keysUrl .Values.secretScanning.caBundle }}
    - --secret-scanning-ca-file=/etc/apikey-operator/secret-scanning-ca/ca.crt
    {{- end }}
    {{- with include "apikey-operator.federationIssuerJwks" . }}
    - --federation-issuer-jwks={{ . }}
    {{- end }}
    {{- with include "apikey-operator.pkcs11Args" . }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with .Values.tokenServer.extraArgs }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  env:
    {{- include "apikey-operator.podEnv" . | nindent 4 }}
    {{- with include "apikey-operator.pkcs11Env" . }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with .Values.tokenServer.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: http
      containerPort: {{ .Values.tokenServer.port }}
      protocol: TCP
    - name: metrics
      containerPort: {{ .Values.tokenServer.metricsPort }}
      protocol: TCP
  livenessProbe:
    httpGet:
      path: /healthz
      port: http
      scheme: {{ include "apikey-operator.tokenScheme" . | upper }}
    periodSeconds: 10
    failureThreshold: 3
  readinessProbe:
    httpGet:
      path: /readyz
      port: http
      scheme: {{ include "apikey-operator.tokenScheme" . | upper }}
    periodSeconds: 5
    failureThreshold: 2
  {{- if .Values.tokenServer.tls.enabled }}
  # Until its certificate is in the mounted Secret (the kubelet fills a new Secret's volume within
  # a minute or two of its creation), the token server waits without listening.
  startupProbe:
    httpGet:
      path: /healthz
      port: http
      scheme: HTTPS
    periodSeconds: 5
    failureThreshold: 60
  {{- end }}
  # A Pod asked to stop keeps answering for 10 s before the token server gets SIGTERM: the time
  # kube-proxy (and ingress controllers) take to stop sending it new connections. Without it a
  # rollout or a deleted Pod refuses a few token requests even with two replicas; 5 s was not always
  # enough on a loaded node (a request to a deleted Pod timed out once in a full run).
  lifecycle:
    preStop:
      exec:
        command: [sleep, "10"]
  resources:
    {{- toYaml .Values.tokenServer.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    {{- include "apikey-operator.volumeMounts" . | nindent 4 }}
    {{- if eq .Values.tokenServer.mode "sidecar" }}
    - name: token-server-token
      mountPath: /var/run/secrets/kubernetes.io/serviceaccount
      readOnly: true
    {{- end }}
    {{- if .Values.tokenServer.tls.enabled }}
    - name: token-tls
      mountPath: /etc/apikey-operator/tls
      readOnly: true
    {{- end }}
    {{- if .Values.federation.caBundle }}
    - name: federation-ca
      mountPath: /etc/apikey-operator/federation-ca
      readOnly: true
    {{- end }}
    {{- if and .Values.secretScanning.keysUrl .Values.secretScanning.caBundle }}
    - name: secret-scanning-ca
      mountPath: /etc/apikey-operator/secret-scanning-ca
      readOnly: true
    {{- end }}
    {{- if .Values.federation.privateIssuers }}
    # Not a subPath: the kubelet updates the files in place when the objects change (rotation).
    - name: federation-jwks
      mountPath: /etc/apikey-operator/federation-jwks
      readOnly: true
    {{- end }}
    {{- with include "apikey-operator.pkcs11Mounts" . }}
    {{- . | nindent 4 }}
    {{- end }}
{{- end }}

{{/* The volume mounts of every container: the writable /tmp, and volumeMounts. */}}
{{- define "apikey-operator.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- with .Values.volumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Pod spec fields shared by the controller and the token-server pods; called with (dict "ctx" . "component" ...).
The controller pod of sidecar mode mounts no token for every container: the controller container mounts
its own ServiceAccount's, and the token-server container the token server's own, which the controller
requests and writes into an in-memory volume only these two containers mount. The console pod mounts
its own token only for its sign-out list (it acts for people only with their own ID tokens), with the
cluster's CA, its session keys and its OIDC client secret.
*/}}
{{- define "apikey-operator.podCommon" -}}
{{- $sidecarPod := and (eq .component "controller") (eq .ctx.Values.tokenServer.mode "sidecar") }}
{{- $ownToken := and (not $sidecarPod) (ne .component "console") }}
{{- with .ctx }}
automountServiceAccountToken: {{ $ownToken }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  # readOnlyRootFilesystem: a small writable /tmp for anything Node.js or a library needs.
  - name: tmp
    emptyDir:
      sizeLimit: 16Mi
  {{- if and .Values.tokenServer.tls.enabled (or $sidecarPod (eq $.component "token-server")) }}
  # The token server's TLS certificate and key (a kubernetes.io/tls Secret, renewed in place).
  - name: token-tls
    secret:
      secretName: {{ include "apikey-operator.tokenTLSSecret" . }}
      {{- if include "apikey-operator.tlsGenerated" . }}
      # The controller makes it after the Pod starts: the token server waits for it.
      optional: true
      {{- end }}
  {{- end }}
  {{- if and .Values.federation.caBundle (or $sidecarPod (eq $.component "token-server")) }}
  # CAs the token server trusts for the federation issuers' TLS (federation.caBundle).
  - name: federation-ca
    configMap:
      name: {{ include "apikey-operator.fullname" . }}-federation-ca
  {{- end }}
  {{- if and .Values.secretScanning.keysUrl .Values.secretScanning.caBundle (or $sidecarPod (eq $.component "token-server")) }}
  # CAs the token server trusts for the secret-scanning partner's keys URL (secretScanning.caBundle).
  - name: secret-scanning-ca
    configMap:
      name: {{ include "apikey-operator.fullname" . }}-secret-scanning-ca
  {{- end }}
  {{- if and .Values.federation.privateIssuers (or $sidecarPod (eq $.component "token-server")) }}
  # The private federation issuers' JWKS (federation.privateIssuers).
  {{- include "apikey-operator.federationJwksVolume" . | nindent 2 }}
  {{- end }}
  {{- if and .Values.signing.pkcs11.enabled (ne $.component "console") }}
  # The PKCS#11 user PIN (signing.pkcs11.pinSecret), a file only the two programs read.
  - name: pkcs11-pin
    secret:
      secretName: {{ .Values.signing.pkcs11.pinSecret.name }}
      defaultMode: 288 # 0440: the user and the pod's fsGroup may read it
      items:
        - key: {{ .Values.signing.pkcs11.pinSecret.key }}
          path: pin
  {{- with .Values.signing.pkcs11.volumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- end }}
  {{- if $sidecarPod }}
  # The controller container's own ServiceAccount token, as the kubelet would automount it.
  - name: controller-token
    projected:
      sources:
        - serviceAccountToken:
            path: token
            expirationSeconds: 3607
        - configMap:
            name: kube-root-ca.crt
            items:
              - key: ca.crt
                path: ca.crt
        - downwardAPI:
            items:
              - path: namespace
                fieldRef:
                  fieldPath: metadata.namespace
  # The token server's own token, written by the controller (TokenRequest), in memory only.
  - name: token-server-token
    emptyDir:
      medium: Memory
      sizeLimit: 1Mi
  {{- end }}
  {{- if eq $.component "console" }}
  # Where a ServiceAccount's files would be: the cluster's CA, to verify the API server, and the
  # console's own token, used only to read and patch its sign-out list (one ConfigMap).
  - name: kube-root-ca
    projected:
      sources:
        - serviceAccountToken:
            path: token
            expirationSeconds: 3607
        - configMap:
            name: kube-root-ca.crt
            items:
              - key: ca.crt
                path: ca.crt
        - downwardAPI:
            items:
              - path: namespace
                fieldRef:
                  fieldPath: metadata.namespace
  # The session keys every replica seals and opens cookies with; the controller makes the Secret
  # (and rotates its keys) after install, so the console waits for it (readiness: /readyz).
  - name: session-keys
    secret:
      secretName: apikey-operator-console-session-keys
      optional: true
  - name: oidc-client-secret
    secret:
      secretName: {{ .Values.console.oidc.clientSecret.existingSecret }}
      items:
        - key: {{ .Values.console.oidc.clientSecret.key }}
          path: client-secret
  {{- with .Values.console.oidc.caConfigMap }}
  - name: oidc-ca
    configMap:
      name: {{ . }}
      items:
        - key: ca.crt
          path: ca.crt
  {{- end }}
  {{- end }}
  {{- with .Values.volumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- end }}

{{/*
topologySpreadConstraints of one component's pods: a constraint that names no labelSelector spreads
the pods of that component. Include with (dict "ctx" $ "component" "controller").
*/}}
{{- define "apikey-operator.topologySpreadConstraints" -}}
{{- $constraints := list }}
{{- range .ctx.Values.topologySpreadConstraints }}
{{- $c := deepCopy . }}
{{- if not (hasKey $c "labelSelector") }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" (include "apikey-operator.selectorLabels" $ | fromYaml)) }}
{{- end }}
{{- $constraints = append $constraints $c }}
{{- end }}
{{- with $constraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "apikey-operator.podMetadata" -}}
labels:
  {{- include "apikey-operator.selectorLabels" . | nindent 2 }}
  {{- with merge (dict) (.ctx.Values.podLabels | default dict) (.ctx.Values.global.commonLabels | default dict) }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .ctx.Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* NetworkPolicy ingress rules of the token server: its token port from tokenClients, its metrics port from metricsClients. */}}
{{- define "apikey-operator.tokenServerIngress" -}}
{{- $np := .Values.networkPolicy -}}
- ports:
    - port: http
      protocol: TCP
  {{- with $np.tokenClients }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
- ports:
    - port: metrics
      protocol: TCP
  {{- with $np.metricsClients }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
--federation-issuer-jwks: ISSUER=FILE for each of federation.privateIssuers, the files being the
keys of the projected volume federation-jwks (issuer-<index>.json). Empty without private issuers.
*/}}
{{- define "apikey-operator.federationIssuerJwks" -}}
{{- $pairs := list }}
{{- range $i, $p := .Values.federation.privateIssuers }}
{{- $pairs = append $pairs (printf "%s=/etc/apikey-operator/federation-jwks/issuer-%d.json" $p.issuer $i) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/* The projected volume of the private issuers' JWKS: inline ones from the chart's ConfigMap, the others from their own objects. */}}
{{- define "apikey-operator.federationJwksVolume" -}}
- name: federation-jwks
  projected:
    sources:
      {{- range $i, $p := .Values.federation.privateIssuers }}
      {{- $path := printf "issuer-%d.json" $i }}
      {{- if $p.jwks }}
      - configMap:
          name: {{ include "apikey-operator.fullname" $ }}-federation-jwks
          items:
            - key: {{ $path }}
              path: {{ $path }}
      {{- else if $p.jwksFrom.secretKeyRef }}
      - secret:
          name: {{ $p.jwksFrom.secretKeyRef.name }}
          items:
            - key: {{ $p.jwksFrom.secretKeyRef.key }}
              path: {{ $path }}
      {{- else }}
      - configMap:
          name: {{ $p.jwksFrom.configMapKeyRef.name }}
          items:
            - key: {{ $p.jwksFrom.configMapKeyRef.key }}
              path: {{ $path }}
      {{- end }}
      {{- end }}
{{- end }}
