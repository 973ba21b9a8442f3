# syntax=docker/dockerfile:1

# ---- build: compile TypeScript (decorator metadata needs tsc), bundle the explorer, then drop dev dependencies ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ormconfig.ts ./
COPY src ./src
COPY explorer ./explorer
RUN npm run build \
 && npm prune --omit=dev

# ---- runtime ----
FROM node:20-bookworm-slim
# Production unless overridden (docker-compose.yml defaults to development for a first try).
# In a container the service must listen on every interface to be reachable through a port.
ENV NODE_ENV=production HOST=0.0.0.0 PORT=4000
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/package.json ./package.json
# Writable data directory for the embedded database / generated keys (used when DATABASE_URL is unset).
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node
EXPOSE 4000
# Follows PORT, whatever the container is started with.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/src/main.js"]
