# syntax=docker/dockerfile:1
# The apikey-operator image: one Node.js program, `apikey-operator controller` (the default) or
# `apikey-operator token-server`. Build: docker build -t apikey-operator:0.2.0 .

# Production dependencies only. The `node` devDependency (a Node.js binary from npm) is a dev
# dependency, so --omit=dev never fetches it. No production dependency needs an install script except
# the optional PKCS#11 addon (pkcs11js, docs/operations/hsm.md), which is compiled here against the
# base image's own Node.js headers (/usr/local/include/node; nothing is downloaded for them). It is a
# Node-API addon, so it loads in any Node.js of the same major line. python3, make and g++ exist in
# this stage only: the final stage copies node_modules and nothing else from it.
FROM node:24-bookworm-slim AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild pkcs11js --no-audit --no-fund \
 && node -e "require('pkcs11js')" \
 && rm -rf node_modules/pkcs11js/build/Release/obj.target node_modules/pkcs11js/build/Release/.deps

# Compile TypeScript. --ignore-scripts skips the `node` devDependency's download of a second Node.js,
# so tsc runs directly on the image's own Node 24.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# (.dockerignore leaves the unit tests, src/**/*.test.ts, out of the context, so none is compiled.)
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json

FROM node:24-bookworm-slim
ARG VERSION=0.2.0
LABEL org.opencontainers.image.title="apikey-operator" \
      org.opencontainers.image.description="Kubernetes operator that manages Deployment API keys and turns them into short-lived OAuth 2.0 access tokens" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="docker.io/library/node:24-bookworm-slim"
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only to the program, which runs as an unprivileged numeric user
# (Kubernetes' runAsNonRoot can verify a numeric USER only).
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY crds ./crds
USER 65532:65532
# V8's heap sizing, for a program whose live heap is small (about 50 MB with 10,000 keys) but whose
# bursts allocate fast: by default V8 sizes the young generation from the machine's memory (up to
# 128 MB on a 24 GB machine), lets the heap grow to several times what is live, and keeps it. A 2 MB
# semi-space, a heap that grows by 20% over what is live, and V8's optimize-for-size mode keep the
# controller with 10,000 keys at about 130 MB instead of 549 (docs/development/benchmarks.md, "Ten thousand keys"). None of
# them caps the heap: it still grows to whatever is live. They cost CPU (about 40% more for the
# controller's reconciles). --heap-growing-percent and --optimize-for-size are refused in
# NODE_OPTIONS, so the flags are here; the bench starts the programs with the flags it reads here.
ENTRYPOINT ["node", "--max-semi-space-size=2", "--heap-growing-percent=20", "--optimize-for-size", "dist/src/cli/main.js"]
CMD ["controller"]
