import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { validateManifest, formatManifestIssues, taskCount, taskInputSpec, quorumOf, spotChecksOf } from '../../../../src/core/scheduler/index.js'

const ok = { executor: 'wasm', code: { wasm: 'tile.wasm' }, inputs: { range: { from: 0, to: 9 } } }
const issues = (raw: unknown): string => { const r = validateManifest(raw); return r.ok ? '' : formatManifestIssues(r.issues) }

test('a minimal manifest gets defaults', () => {
  const r = validateManifest(ok)
  assert.ok(r.ok)
  if (!r.ok) return
  assert.is(r.manifest.verification.redundancy, 1)
  assert.is(quorumOf(r.manifest), 1)
  // results are checked by default; redundancy 1 alone is not an opt-out, mode off is
  assert.is(r.manifest.verification.mode, 'spot-check')
  assert.equal(spotChecksOf(r.manifest), { rate: 0.1, trustAfter: 10 })
  const one = validateManifest({ ...ok, verification: { redundancy: 1 } })
  assert.ok(one.ok && spotChecksOf(one.manifest) !== undefined)
  const off = validateManifest({ ...ok, verification: { mode: 'off' } })
  assert.ok(off.ok && spotChecksOf(off.manifest) === undefined && off.manifest.verification.redundancy === 1)
  const tuned = validateManifest({ ...ok, verification: { spotCheckRate: 0.5, trustAfter: 3, redundancy: 3 } })
  assert.ok(tuned.ok && tuned.manifest.verification.mode === 'spot-check')
  if (tuned.ok) assert.equal(spotChecksOf(tuned.manifest), { rate: 0.5, trustAfter: 3 })
  assert.match(issues({ ...ok, verification: { mode: 'none' } }), /^verification\.mode: /)
  assert.match(issues({ ...ok, verification: { spotCheckRate: 2 } }), /^verification\.spotCheckRate: /)
  assert.is(taskCount(r.manifest), 10)
  assert.is(r.manifest.placement, 'cost-model')
  const rnd = validateManifest({ ...ok, placement: 'random' })
  assert.ok(rnd.ok && rnd.manifest.placement === 'random')
})

test('errors name the field path and the problem', () => {
  assert.is(issues({ ...ok, inputs: { range: { from: 5, to: 1 } } }), 'inputs.range.to: must be >= from')
  assert.is(issues({ ...ok, resources: { gpus: 2 } }), 'resources.gpus: unknown field (did you mean gpu?)')
  assert.is(issues({ ...ok, colour: 'red' }), 'colour: unknown field')
  assert.match(issues({ ...ok, verification: { redundancy: 2, quorum: 3 } }), 'verification.quorum: must be <= redundancy (2)')
  assert.match(issues({ ...ok, executor: 'process' }), 'code: executor "process" needs code.command')
  assert.match(issues({ ...ok, inputs: { list: [1], range: { from: 0, to: 1 } } }), 'inputs: give exactly one of list, range or files')
  assert.match(issues({ ...ok, resources: { cores: 0 } }), /^resources\.cores: /)
  assert.match(issues({ ...ok, location: { lat: 10 } }), 'location.lon: lat and lon go together')
  assert.match(issues({ ...ok, budget: { total: -1 } }), /^budget\.total: /)
  assert.match(issues({ executor: 'wasm' }), /code: .*\n?.*inputs: /s)
  assert.match(issues({ ...ok, deadline: 'tomorrow' }), /^deadline: /)
  assert.match(issues({ ...ok, placement: 'nearest' }), /^placement: .*cost-model.*random/)
})

test('an unknown field names the known one a typo most likely meant, at its own level, else nothing', () => {
  assert.is(issues({ ...ok, resourcs: { cores: 1 } }), 'resourcs: unknown field (did you mean resources?)')
  assert.is(issues({ ...ok, task: { timeoutms: 5 } }), 'task.timeoutms: unknown field (did you mean timeoutMs?)')
  assert.is(issues({ ...ok, resources: { gpu: { modle: 'RTX4090', vram: 8 } } }), 'resources.gpu.modle: unknown field (did you mean model?)\nresources.gpu.vram: unknown field')
  assert.is(issues({ ...ok, inputs: { rang: { from: 0, to: 1 } } }).split('\n')[0], 'inputs.rang: unknown field (did you mean range?)')
  // a name of another level is not offered: \`cores\` lives under resources
  assert.is(issues({ ...ok, core: 1 }), 'core: unknown field (did you mean code?)')
  assert.is(issues({ ...ok, zzz: 1 }), 'zzz: unknown field')
  // many unknown fields: each named, the suggestions stop after the first 32 issues
  const many = issues({ ...ok, ...Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`budge${i}`, 1])) }).split('\n')
  assert.is(many.length, 100)
  assert.ok(many.slice(32).every(l => l.endsWith(': unknown field')), many[40])
})

test('range, list and file partitions expand to tasks', () => {
  const r = validateManifest({ ...ok, inputs: { range: { from: 0, to: 1, step: 0.1 } } })
  assert.ok(r.ok); if (!r.ok) return
  assert.is(taskCount(r.manifest), 11)
  assert.equal(taskInputSpec(r.manifest, 3), { kind: 'value', value: 0.3 })
  const f = validateManifest({ ...ok, inputs: { files: { path: 'data.bin', partitions: 3 } } })
  assert.ok(f.ok); if (!f.ok) return
  assert.is(taskCount(f.manifest, 10), 3)
  const parts = [0, 1, 2].map(i => taskInputSpec(f.manifest, i, 10)) as Array<{ offset: number, length: number }>
  assert.is(parts.reduce((n, p) => n + p.length, 0), 10)
  assert.is(parts[2].offset + parts[2].length, 10)
  const c = validateManifest({ ...ok, inputs: { files: { path: 'data.bin', chunkBytes: 4 } } })
  assert.ok(c.ok); if (!c.ok) return
  assert.is(taskCount(c.manifest, 10), 3)
  assert.equal(taskInputSpec(c.manifest, 2, 10), { kind: 'file-range', path: 'data.bin', offset: 8, length: 2 })
})

test('inputEncoding f64: a list value that is not a number is named, not sent as NaN (user walk s14)', () => {
  const f64 = (list: unknown[]): string => issues({ ...ok, inputs: { list }, task: { inputEncoding: 'f64' } })
  // before: accepted, every task ran on NaN and the job "finished" with NaN results
  assert.match(f64(['a', { x: 1 }]), /inputs\.list\.0: "a" is not a number: task\.inputEncoding f64/)
  assert.match(f64(['a', { x: 1 }]), /inputs\.list\.1: \{"x":1\} is not a number/)
  assert.is(f64([1, 2.5, -4, [1, 2], '3']), '', 'numbers, lists of numbers and numeric strings are fine')
  const many = f64(Array.from({ length: 10 }, () => 'x'))
  assert.is(many.split('is not a number').length - 1, 3, 'the first three are named')
  assert.match(many, /7 more values are not numbers/)
  assert.is(issues({ ...ok, inputs: { list: ['a'] } }), '', 'json encoding sends any value')
})

test.run()
