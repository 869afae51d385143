# syntax=docker/dockerfile:1
#
# inferq image: one image for both roles.
#   docker build -t inferq .
#   docker run -p 8080:8080 -e REDIS_URL=redis://host:6379 inferq          # API (default CMD)
#   docker run -e REDIS_URL=redis://host:6379 inferq worker                 # inference worker
#
# A build stage compiles src/ to dist/ (`npm run build:service`); the runtime stage ships dist/,
# bin/, models/ and production node_modules only, so bin/inferq.js runs compiled JavaScript (no
# TypeScript sources, no tsx, no compiler in the image).

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------------------------
# deps: production dependencies only, resolved exactly from package-lock.json.
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
# onnxruntime-node's postinstall would download CUDA libraries; its npm package already ships
# the CPU binaries for linux x64 and arm64, which is all inferq uses.
ENV ONNXRUNTIME_NODE_INSTALL=skip \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
COPY package.json package-lock.json ./
# The onnxruntime-node package carries binaries for every OS and CPU (~290 MB); keep only
# linux/<this build's arch> (buildx builds each platform in its own stage run).
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev \
 && arch="$(node -p process.arch)" \
 && find node_modules/onnxruntime-node/bin -mindepth 2 -maxdepth 2 -type d ! -name linux -exec rm -rf {} + \
 && find node_modules/onnxruntime-node/bin -mindepth 3 -maxdepth 3 -type d ! -name "$arch" -exec rm -rf {} +

# ---------------------------------------------------------------------------------------------
# build: every dependency (the compiler and type packages too), then src/ compiled to dist/.
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build:service && rm dist/.tsbuildinfo

# ---------------------------------------------------------------------------------------------
# runtime: slim Node, non-root, no compilers, no npm cache, no dev dependencies.
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    MODEL_DIR=/app/models
WORKDIR /app

# Everything the app reads is owned by root and read-only for the runtime user: the process
# cannot rewrite its own code or models. With no src/ beside it, bin/inferq.js always runs dist/.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json package-lock.json ./
COPY bin ./bin
COPY models ./models

# The `node` user (uid/gid 1000) of the official image; numeric so that Kubernetes'
# runAsNonRoot can verify it without a runAsUser.
USER 1000:1000

EXPOSE 8080

# Both roles install SIGTERM/SIGINT handlers (src/shared/shutdown.ts) and close gracefully:
# the API stops accepting and answers its waiters, the worker finishes its active jobs.
# About PID 1 / tini: node runs as PID 1 here, which is fine for `api` and `worker` because
# they handle the signals themselves and spawn no child processes (the worker's inference runs
# in a worker_thread, not a process), so there is nothing to reap. `inferq start` does spawn
# children: run it with `docker run --init` (compose sets `init: true` anyway), which puts
# Docker's bundled tini in front as PID 1 to forward signals and reap zombies.
STOPSIGNAL SIGTERM

# Slim images have no curl: probe with node's built-in fetch. Workers have no HTTP port yet
# (a metrics port, WORKER_METRICS_PORT, is planned), so for a container started as `worker`
# the check only confirms the process is up (the main command line, seen through
# /proc/1/cmdline, names the role; with --init PID 1 is tini, whose command line includes it).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const argv = require('fs').readFileSync('/proc/1/cmdline', 'utf8').split('\\0'); if (argv.includes('worker')) process.exit(0); fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health/live', { signal: AbortSignal.timeout(2500) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1));"]

ENTRYPOINT ["node", "bin/inferq.js"]
CMD ["api"]
