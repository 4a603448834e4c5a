# fleet: the controller and its development tools (the proctor simulator) in one image.
# The sources and their dependencies are bundled (esbuild, scripts/build.mjs) into dist/fleet.mjs
# and run with plain node: no TypeScript loader in the running process. pg, pino and PGlite stay
# outside the bundle and come from node_modules.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

FROM node:20-slim
WORKDIR /app

# Dependencies first, so that a change to the sources does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# The bundle, and what it reads beside it: migrations, the catalog, the plans.
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
COPY plans ./plans
COPY src/catalog/catalog.yaml ./src/catalog/catalog.yaml

# The embedded database's folder (only used outside production mode, without DATABASE_URL).
RUN mkdir -p /app/.fleet && chown node:node /app/.fleet

USER node
# Fails the build if the bundle does not load.
RUN node dist/fleet.mjs --help > /dev/null

ENV FLEET_HOST=0.0.0.0 \
    PORT=8080 \
    LOG_FORMAT=json
EXPOSE 8080
# The heap grows by half its live size between full collections (V8's default: up to four times):
# a controller's live heap is small and steady, and this keeps its peak RSS near it (README.md, Production).
CMD ["node", "--heap-growing-percent=50", "dist/fleet.mjs", "serve"]
