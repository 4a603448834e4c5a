# fleet: the controller and its development tools (the proctor simulator) in one image.
# No build step: bin/fleet.js runs the TypeScript sources through tsx.
FROM node:20-slim

WORKDIR /app

# Dependencies first, so that a change to the sources does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY bin ./bin
COPY migrations ./migrations
COPY plans ./plans
COPY src ./src

# The embedded database's folder (only used outside production mode, without DATABASE_URL).
RUN mkdir -p /app/.fleet && chown node:node /app/.fleet

USER node
# Compiles every module once (into tsx's cache under /tmp), so that containers start faster,
# and fails the build if a source does not load.
RUN node bin/fleet.js --help > /dev/null

ENV FLEET_HOST=0.0.0.0 \
    PORT=8080 \
    LOG_FORMAT=json
EXPOSE 8080
CMD ["node", "bin/fleet.js", "serve"]
