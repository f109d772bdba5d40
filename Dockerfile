# syntax=docker/dockerfile:1
# Eventloom: one image for the operator, the gateway and the engine; the container's arguments choose
# which runs (the Helm chart passes the entry file):
#
#   docker run ghcr.io/eventloom/eventloom:<version>                            # dist/operator/main.js
#   docker run ghcr.io/eventloom/eventloom:<version> services/gateway/main.ts
#   docker run ghcr.io/eventloom/eventloom:<version> services/engine/main.ts
#
# The operator runs as plain JavaScript bundled at image build time (stage `build`, scripts/build.sh:
# esbuild, dependencies left in node_modules): Node's in-process TypeScript transform costs it ~20–25 MiB
# of RSS, a large share of its 150 MiB budget (BENCHMARKS.md, "Operator memory"). Its TypeScript sources
# stay in the image too (`operator/main.ts` runs them, as the dev target does for live update).
#
# The gateway and the engine have no build step: Node 24 runs the TypeScript sources itself. `--experimental-transform-types` strips
# the types and also transforms the few TypeScript-only constructs the code uses (constructor
# parameter properties), so tsx, a dev dependency, is not needed at runtime and `npm ci --omit=dev`
# suffices. Imports already name `.ts` files (tsconfig: allowImportingTsExtensions), which is what
# Node's loader needs. The Helm chart adds V8 heap bounds for the operator only (values.yaml,
# operator.nodeArgs: --max-semi-space-size=2 --max-old-space-size=128; see BENCHMARKS.md, "Operator memory").
#
# Targets:
#   runtime (default)  the production image, read-only sources owned by root, runs as 65532
#   dev                the same, with the sources writable by 65532 so `tilt up` can live-update them
#   example-workers    services/examples/ as a Worker image: the Worker's args name the example,
#                      e.g. `args: [order-saga/order-service]` runs services/examples/order-saga/order-service.ts
#
# Build: docker build -t ghcr.io/eventloom/eventloom:dev .
#        docker build --target example-workers -t eventloom/example-workers:dev .

ARG NODE_IMAGE=node:24-slim

# ---- dependencies: production only, from the lockfile ------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency needs an install script at runtime (protobufjs's only prints a notice).
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---- build: the operator bundled into plain JavaScript ------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund
COPY scripts/build.sh ./scripts/build.sh
COPY operator ./operator
COPY services ./services
# esbuild's platform binary comes from its optional dependency (no install script needed).
RUN PATH="/app/node_modules/.bin:$PATH" bash scripts/build.sh

# ---- runtime ----------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# The same non-root UID/GID as the distroless `nonroot` user and the worker pods (operator/builders/deployment.ts).
RUN groupadd --gid 65532 eventloom \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin eventloom
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY operator ./operator
COPY services ./services
COPY --from=build /app/dist ./dist
USER 65532:65532
ENTRYPOINT ["node", "--experimental-transform-types", "--disable-warning=ExperimentalWarning"]
CMD ["dist/operator/main.js"]

# ---- dev: what the Tiltfile builds --------------------------------------------------------------------
# Tilt's live update copies changed sources into the running container as the container's user, so the
# source trees (not node_modules) belong to it here. The chart runs it with readOnlyRootFilesystem off
# and `node --watch` (tilt/values-dev.yaml), which restarts the process when a synced file changes.
FROM runtime AS dev
USER root
RUN chown -R 65532:65532 /app/operator /app/services && chown 65532:65532 /app
USER 65532:65532

# ---- example workers ----------------------------------------------------------------------------------
# `sh -c '<script>' <arg>` makes the Worker's first argument `$0`; the example modules start their worker
# only when they are the main module (import.meta.main), so node must be given the file itself.
FROM runtime AS example-workers
ENTRYPOINT ["/bin/sh", "-c", "[ -f \"services/examples/$0.ts\" ] || { echo \"usage: <group>/<worker> naming services/examples/<group>/<worker>.ts, e.g. order-saga/order-service; got '$0'\" >&2; exit 64; }; exec node --experimental-transform-types --disable-warning=ExperimentalWarning \"services/examples/$0.ts\""]
CMD []

# The default target is the last stage; make it the production image.
FROM runtime
