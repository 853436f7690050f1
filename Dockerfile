# An image for baton serve apps: `docker build -t myapp .` with your app in
# app.js (see examples/docker/ for the hot-deploy recipe). Any Node >= 22.12
# image works; baton's npm package carries a prebuilt linux-x64 addon.
FROM node:24-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json* ./
RUN npm install --omit=dev --ignore-scripts baton
COPY . .
# PID 1 is the baton serve master itself (no npm or shell in between), so the
# TERM that docker forwards reaches it.
ENTRYPOINT ["node", "node_modules/baton-deploy/dist/cli/baton.js", "serve", "app.js", "--reuse-port"]
CMD ["--port=8080"]
