# syntax=docker/dockerfile:1
# Parley's container image: the gateway, the web client and the built-in model, run as a
# non-root user. Two stages: the first installs everything and builds (TypeScript, the web
# client, the built-in model's weights), the second keeps only what runs.
#
#   docker build -t parley .
#   docker run --rm -p 8080:8080 parley                      # the built-in model
#   docker run --rm -p 8080:8080 -v hf:/home/node/.cache/huggingface parley \
#     --model hf:onnx-community/Qwen2.5-0.5B-Instruct#q4      # a hub model, cached in a volume
#
# gateway/src/deploy/dockerfile.test.ts runs these steps in a clean folder (CI cannot pull a
# base image); keep to instructions it knows: FROM, ARG, ENV, WORKDIR, COPY, RUN, USER, EXPOSE,
# HEALTHCHECK, ENTRYPOINT, CMD.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# onnxruntime-node's install script would download CUDA binaries; its npm package already
# ships the CPU ones. package.json's allowScripts denies it on npm 11.19+, this on older npm.
ENV ONNXRUNTIME_NODE_INSTALL=skip TURBO_TELEMETRY_DISABLED=1
# The manifests first, so the dependency layer is reused while only sources change.
COPY package.json package-lock.json ./
COPY gen/package.json gen/
COPY model-builder/package.json model-builder/
COPY gateway/package.json gateway/
COPY web-client/package.json web-client/
RUN npm install --no-audit --no-fund
COPY . .
# Builds gen/, model-builder/, gateway/dist, web-client/dist, and the built-in model into
# gateway/models/ (model-builder is a build tool: the runtime stage leaves it behind). Only the
# product and what it is built with: the bench workspace (and its dependencies) stays out.
RUN npx turbo run build --filter=@parley/gateway --filter=@parley/web-client
RUN npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
WORKDIR /app
# 0.0.0.0: reachable from outside the container (Parley binds 127.0.0.1 unless told).
ENV NODE_ENV=production PARLEY_HOST=0.0.0.0 PORT=8080 HF_HOME=/home/node/.cache/huggingface
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules node_modules/
COPY --from=build /src/gen/package.json gen/
COPY --from=build /src/gen/dist gen/dist/
COPY --from=build /src/gateway/package.json gateway/
COPY --from=build /src/gateway/dist gateway/dist/
COPY --from=build /src/gateway/models gateway/models/
COPY --from=build /src/web-client/dist web-client/dist/
# The base image's unprivileged user (uid 1000); it owns nothing in /app, which it only reads.
USER node
EXPOSE 8080
# /readyz is 200 once a model serves and 503 while loading or draining; the image has no curl,
# so Node asks. A hub model may take minutes to download on first start: hence the start period.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10m --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT ?? 8080}/readyz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Flags after the image name go to parley (docker run parley --model ...).
ENTRYPOINT ["node", "gateway/dist/main.js"]
