/** @type {import('next').NextConfig} */
export default {
  poweredByHeader: false,
  // also the self-contained server.js Next's docs deploy with (`node
  // .next/standalone/server.js`), run unchanged by `baton serve`
  output: 'standalone',
};
