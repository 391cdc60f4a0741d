#!/usr/bin/env node
// Entry point of the `dbc` command. Runs the TypeScript sources through tsx so a fresh clone
// needs no build step; refuses early (with a fix) on a Node older than 22.
const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  process.stderr.write(`dbc needs Node 22 or newer (this is ${process.version}).\n` +
    'Run it through npm so the pinned Node 22 is used: `npx dbc ...` or `npm exec dbc -- ...`.\n')
  process.exit(1)
}
// node:sqlite is stable enough for us but still flagged experimental in Node 22: keep that one
// notice out of every command's output.
const emitWarning = process.emitWarning
process.emitWarning = function (warning, ...rest) {
  const type = typeof rest[0] === 'string' ? rest[0] : rest[0]?.type
  if (type === 'ExperimentalWarning' && String(warning).includes('SQLite')) return
  return emitWarning.call(process, warning, ...rest)
}
const { register } = await import('tsx/esm/api')
register()
await import('../src/cli/main.ts')
