#!/usr/bin/env node
// Entry point of the `dbc` command. Runs the TypeScript sources through tsx so a fresh clone
// needs no build step; refuses early (with a fix) on a Node older than 22.
const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  process.stderr.write(`dbc needs Node 22 or newer (this is ${process.version}).\n` +
    'Run it through npm so the pinned Node 22 is used: `npx dbc ...` or `npm exec dbc -- ...`.\n')
  process.exit(1)
}
const { register } = await import('tsx/esm/api')
register()
await import('../src/cli/main.ts')
