/** @type {import('next').NextConfig} */
export default {
  // baton serve is the server; no telemetry from a build in CI
  poweredByHeader: false,
};
