// A training spec names no program, and every field of one from the wire is bounded.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { checkTrainingFields, decodeSpec, encodeSpec, parseTrainingSpec, MAX_SPEC_BYTES, SPEC_NAMES_PROGRAM } from '../../../src/training/spec.js'

function refusal (input: unknown): { code: string, message: string } {
  try {
    parseTrainingSpec(input)
  } catch (err) {
    return { code: (err as any).code, message: (err as Error).message }
  }
  throw new Error(`spec ${JSON.stringify(input)} was accepted`)
}

test('a spec that names a command or a socket is refused with a clear message', () => {
  for (const model of [
    { kind: 'external', command: ['sh', '-c', 'id > /tmp/pwned'] },
    { kind: 'external', socket: '/run/docker.sock' },
    { kind: 'external', trainer: 'torch-mnist', command: ['python3'] },
    { kind: 'mlp', command: ['sh'] }
  ]) {
    const r = refusal({ model })
    assert.is(r.code, 'TRAINING_SPEC_NAMES_PROGRAM')
    assert.is(r.message, SPEC_NAMES_PROGRAM)
    assert.match(r.message, /operator declares trainers; name one with model.trainer/)
  }
})

test('unknown keys in the model and nested objects are refused', () => {
  assert.match(refusal({ model: { kind: 'external', trainer: 'x', image: 'evil:latest' } }).message, /training\.model/)
  assert.match(refusal({ model: { kind: 'mlp', hidden: 8, env: { LD_PRELOAD: '/x' } } }).message, /training\.model/)
  assert.match(refusal({ model: { kind: 'exec', trainer: 'x' } }).message, /training\.model/)
  assert.match(refusal({ dataset: { name: 'mnist', path: '/etc/shadow' } }).message, /training\.dataset/)
  assert.match(refusal({ codec: { kind: 'fp32', extra: 1 } }).message, /training\.codec/)
  assert.match(refusal({ deadline: { initialMs: 10, shell: 'x' } }).message, /training\.deadline/)
  assert.match(refusal({ gpu: { count: 1, driver: 'x' } }).message, /training\.gpu/)
})

test('an external model names a trainer by name only', () => {
  const s = parseTrainingSpec({ model: { kind: 'external', trainer: 'torch-mnist' } })
  assert.equal(s.model, { kind: 'external', trainer: 'torch-mnist' })
  assert.match(refusal({ model: { kind: 'external' } }).message, /training\.model\.trainer/)
  assert.match(refusal({ model: { kind: 'external', trainer: '../../bin/sh' } }).message, /not a trainer name/)
  assert.match(refusal({ model: { kind: 'external', trainer: 'x'.repeat(65) } }).message, /not a trainer name/)
})

test('sizes are bounded: a built-in MLP with 10^9 parameters is refused before anything is allocated', () => {
  // 784·h + h + 10·h + 10 ≈ 10^9 needs h ≈ 1.26M; the schema stops at 4096 (3.3M parameters)
  assert.match(refusal({ model: { kind: 'mlp', hidden: 1_260_000 } }).message, /training\.model\.hidden/)
  assert.match(refusal({ batchSize: 65_536 }).message, /training\.batchSize/)
  assert.match(refusal({ localSteps: 100_000 }).message, /training\.localSteps/)
  assert.match(refusal({ gpu: { model: 'x'.repeat(100) } }).message, /training\.gpu\.model/)
  assert.match(refusal({ deadline: { maxMs: 1e12 } }).message, /training\.deadline\.maxMs/)
})

test('decodeSpec bounds the bytes it parses and round-trips what encodeSpec wrote', () => {
  const spec = parseTrainingSpec({ model: { kind: 'external', trainer: 'torch-mnist' }, rounds: 3 })
  assert.equal(decodeSpec(encodeSpec(spec)), spec)
  const big = new TextEncoder().encode(JSON.stringify({ rounds: 3, pad: 'x'.repeat(MAX_SPEC_BYTES) }))
  try { decodeSpec(big); assert.unreachable() } catch (err) { assert.match((err as Error).message, /exceeds/) }
  try { decodeSpec(new TextEncoder().encode('{nope')); assert.unreachable() } catch (err) { assert.is((err as any).code, 'TRAINING_SPEC_INVALID') }
  try { decodeSpec(new TextEncoder().encode(JSON.stringify({ model: { kind: 'external', command: ['sh'] } }))); assert.unreachable() } catch (err) {
    assert.is((err as any).code, 'TRAINING_SPEC_NAMES_PROGRAM')
  }
})

test('a submitted spec with a misspelt field is refused naming the field meant; a newer coordinator\'s extra field in an invitation is read without it', () => {
  const refused = (input: unknown): string => { try { checkTrainingFields(input); return 'accepted' } catch (err) { return `${(err as any).code}: ${(err as Error).message}` } }
  assert.is(refused({ model: { kind: 'mlp' }, round: 5 }), 'TRAINING_SPEC_INVALID: training.round: unknown field (did you mean rounds?)')
  assert.is(refused({ learningrate: 0.1 }), 'TRAINING_SPEC_INVALID: training.learningrate: unknown field (did you mean learningRate?)')
  assert.match(refused({ rounds: 3, colour: 1, flavour: 2 }), /training\.colour: unknown field \(and 1 more unknown\)/)
  assert.is(refused({ model: { kind: 'mlp' }, rounds: 5, learningRate: 0.1 }), 'accepted')
  // the wire: a field this version does not know is dropped, the rest read
  const spec = decodeSpec(new TextEncoder().encode(JSON.stringify({ ...parseTrainingSpec({ rounds: 7 }), someFutureField: true })))
  assert.is(spec.rounds, 7)
  assert.not.ok('someFutureField' in spec)
})

test.run()
