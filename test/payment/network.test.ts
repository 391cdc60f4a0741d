// One chain per network (issue 13 §1): named networks and their chain ids, the sandbox refused
// for a node that joins others, and a LocalNetwork whose nodes share one anvil: the same
// deterministic contract, each node its own key funded by the local faucet, and each provider's
// stake paid by that provider from its own balance.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { createPublicClient, http, parseAbiItem } from 'viem'
import { loadConfig } from '../../src/node/config.js'
import { parseChainSettings } from '../../src/chain/settings.js'
import { FAUCET_AMOUNT_WEI } from '../../src/chain/settings.js'
import { settlementAddress, ensureCreate2Settlement } from '../../src/chain/deploy.js'
import { topUpFromFaucet } from '../../src/chain/faucet.js'
import { connectChain } from '../../src/chain/client.js'
import { SendQueue } from '../../src/chain/sender.js'
import { startAnvil } from '../../src/chain/anvil.js'
import { DEV_PRIVATE_KEYS } from '../../src/chain/dev-keys.js'
import { ConfigError, ChainError } from '../../src/errors.js'
import { LocalNetwork } from '../../demo/network.js'
import { dbc, dbcBin, repoRoot, tempDir } from '../helpers/cli.js'
import { spawn } from 'node:child_process'
import { ChainSubsystem } from '../../src/chain/subsystem.js'
import { openStore } from '../../src/store/db.js'

const BOOT = '/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvkXtf'
const dir = tempDir('dbc-network-')

function configError (fn: () => unknown): ConfigError {
  try { fn() } catch (err) {
    assert.instance(err, ConfigError)
    return err as ConfigError
  }
  throw new assert.Assertion({ message: 'expected a ConfigError', operator: 'throws', generated: true, expects: 'throw', actual: 'no throw' })
}
const load = (flags: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): ReturnType<typeof loadConfig> => loadConfig({ flags: { dataDir: dir, ...flags }, env })

test('named networks map to their chains; flags and environment choose them', () => {
  const mainnet = parseChainSettings({}, { network: 'dbc-mainnet' })
  assert.equal([mainnet.kind, mainnet.chainId, mainnet.url, mainnet.faucet, mainnet.autoStakeDefault], ['rpc', 19880818, 'https://rpc.dbcwallet.io', false, false])
  const testnet = parseChainSettings({}, { network: 'dbc-testnet' })
  assert.equal([testnet.kind, testnet.chainId, testnet.url, testnet.faucet], ['rpc', 19850818, 'https://rpc-testnet.dbcwallet.io', false])
  const local = parseChainSettings({}, { network: 'local', joining: true })
  assert.equal([local.kind, local.chainId, local.url, local.faucet, local.autoStakeDefault, local.confirmations], ['rpc', 31337, 'http://127.0.0.1:8545', true, true, 1])
  // RPC URLs are configurable; a local anvil may run another chain id
  assert.is(parseChainSettings({ rpc: 'http://10.0.0.5:9000' }, { network: 'dbc-testnet' }).url, 'http://10.0.0.5:9000')
  assert.is(parseChainSettings({ chainId: 1337 }, { network: 'local' }).chainId, 1337)
  // through the config loader: flag, environment
  const c = load({ network: 'local', chain: { rpc: 'http://127.0.0.1:9545' }, bootstrap: [BOOT] })
  assert.is(c.network, 'local')
  assert.is(parseChainSettings(c.chain, { network: c.network, joining: true }).url, 'http://127.0.0.1:9545')
  assert.is(load({}, { DBC_NETWORK: 'dbc-testnet' }).network, 'dbc-testnet')
  assert.is(load({}, { DBC_CHAIN_RPC: 'http://127.0.0.1:1', DBC_CHAIN_ID: '5' }).chain.rpc, 'http://127.0.0.1:1')
  // an explicit RPC with its chain id is a network of its own
  const custom = parseChainSettings({ rpc: 'http://127.0.0.1:8545', chainId: 5 }, { joining: true })
  assert.equal([custom.network, custom.kind, custom.chainId, custom.faucet], ['custom', 'rpc', 5, false])
})

test('bad choices are ConfigErrors naming the setting', () => {
  assert.is(configError(() => load({ network: 'moon' })).key, 'network')
  assert.is(configError(() => load({ network: 'dbc-mainnet', chain: { chainId: 31337 } })).key, 'chain.chainId')
  assert.is(configError(() => load({ chain: { rpc: 'http://127.0.0.1:8545' } })).key, 'chain.chainId')
  assert.is(configError(() => load({ chain: { rpc: 'not a url', chainId: 5 } })).key, 'chain.rpc')
  assert.is(configError(() => load({ chain: { rpcUrl: 'http://127.0.0.1:8545' } })).key, 'chain.rpcUrl')
  assert.is(configError(() => load({ network: 'dbc-mainnet', chain: { faucet: true } })).key, 'chain.faucet')
  assert.is(configError(() => load({ network: 'sandbox', chain: { rpc: 'http://127.0.0.1:8545' } })).key, 'chain.rpc')
  assert.is(configError(() => load({ provider: { autoStake: 'yes' } })).key, 'provider.autoStake')
})

test('a lone node defaults to the sandbox; a node that joins others must name its chain', () => {
  const lone = load({})
  const s = parseChainSettings(lone.chain, { network: lone.network, joining: false })
  assert.equal([s.network, s.kind, s.defaulted], ['sandbox', 'embedded', true])
  const e = configError(() => load({ bootstrap: [BOOT] }))
  assert.is(e.key, 'network')
  assert.match(e.hint ?? '', /--network local --chain-rpc URL/)
  // naming the sandbox does not make it shared
  assert.is(configError(() => load({ network: 'sandbox', bootstrap: [BOOT] })).key, 'network')
  assert.is(configError(() => load({ chain: { kind: 'embedded' }, bootstrap: [BOOT] })).key, 'chain.kind')
  assert.is(load({ network: 'local', bootstrap: [BOOT] }).network, 'local')
})

test('a lone node with nothing configured runs the sandbox and says so in its log', async () => {
  const d = join(dir, 'lone')
  const { mkdirSync } = await import('node:fs')
  mkdirSync(d, { recursive: true })
  const store = openStore(join(d, 'node.sqlite'))
  const lines: string[] = []
  const log = { info: (_o: object, m: string) => { lines.push(m) }, warn: (_o: object, m: string) => { lines.push(`WARN ${m}`) } }
  const sub = new ChainSubsystem({ tickMs: 0 })
  try {
    await sub.start({ config: { dataDir: d }, store, log })
    assert.ok(lines.some(l => /sandbox chain .*no other node sees it.*no network configured/.test(l)), lines.join('\n'))
    assert.is(sub.status().network, 'sandbox')
  } finally {
    await sub.stop()
    store.close()
  }
})

test('`dbc node start --bootstrap` with no network refuses to start and says what to pass', () => {
  const r = dbc(['--data-dir', join(dir, 'refused'), 'node', 'start', '--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', BOOT], { timeoutMs: 60_000 })
  assert.is.not(r.code, 0)
  assert.match(r.stderr, /network/)
  assert.match(r.stderr, /--network local --chain-rpc/)
})

test('CREATE2: racing deployers end with one contract at the computed address; the faucet never serves DBC chains', async () => {
  const anvil = await startAnvil({ chainId: 31337 })
  try {
    const deployers = await Promise.all([DEV_PRIVATE_KEYS[0], DEV_PRIVATE_KEYS[1]].map(async privateKey => await connectChain({ kind: 'rpc', url: anvil.url, chainId: 31337 }, { privateKey })))
    const addrs = await Promise.all(deployers.map(async c => await ensureCreate2Settlement(c, new SendQueue(c), { confirmations: 1, timeoutMs: 30_000 })))
    assert.is(addrs[0], settlementAddress())
    assert.is(addrs[1], settlementAddress())
    // a second deploy is a no-op
    assert.is(await ensureCreate2Settlement(deployers[0], new SendQueue(deployers[0]), { confirmations: 1, timeoutMs: 30_000 }), settlementAddress())
  } finally {
    await anvil.stop()
  }
  for (const chainId of [19880818, 19850818]) {
    const conn = await connectChain({ kind: 'rpc', url: 'http://127.0.0.1:1', chainId }, { privateKey: DEV_PRIVATE_KEYS[3] })
    let err: unknown
    try { await topUpFromFaucet(conn, { belowWei: 1n, amountWei: 1n }) } catch (e) { err = e }
    assert.instance(err, ChainError)
    assert.is((err as ChainError).code, 'FAUCET_REFUSED')
  }
})

test('`dbc chain serve` starts a local chain with the contract deployed and says how to join; Ctrl-C stops it', async () => {
  const child = spawn(process.execPath, [dbcBin, 'chain', 'serve', '--port', '0', '--json'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
  try {
    const deadline = Date.now() + 120_000
    while (!out.includes('"contract"') && child.exitCode === null && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
    const info = JSON.parse(out.slice(out.indexOf('{'), out.lastIndexOf('}') + 1)) as { rpc: string, chainId: number, contract: string, join: string }
    assert.is(info.chainId, 31337)
    assert.is(info.contract, settlementAddress())
    assert.match(info.join, `--network local --chain-rpc ${info.rpc}`)
    const client = createPublicClient({ transport: http(info.rpc) })
    assert.is(await client.getChainId(), 31337)
    assert.ok(((await client.getCode({ address: settlementAddress() })) ?? '0x').length > 2, 'the contract is deployed')
    child.kill('SIGINT')
    assert.is(await exited, 0)
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL')
  }
})

test('two nodes of one LocalNetwork: one chain, the same contract, each its own funded key, each stake paid by its provider', async () => {
  const net = new LocalNetwork()
  try {
    const a = await net.start({ name: 'a', location: 'Tokyo', gpus: '2xRTX4090:24GiB' }, [], { timeoutMs: 120_000 })
    const b = await net.start({ name: 'b', location: 'Paris' }, [a.addrs[0]], { timeoutMs: 120_000 })
    const chain = await net.chain()
    const sa = await a.api.call<Record<string, any>>('GET', '/v1/chain/status')
    const sb = await b.api.call<Record<string, any>>('GET', '/v1/chain/status')
    for (const s of [sa, sb]) {
      assert.is(s.chainId, 31337)
      assert.is(s.url, chain.rpc)
      assert.is(s.reachable, true)
      assert.is(s.contract, settlementAddress())
    }
    assert.is.not(sa.account.toLowerCase(), sb.account.toLowerCase())
    const client = createPublicClient({ transport: http(chain.rpc) })
    const staked = parseAbiItem('event ProviderStaked(address indexed provider, address indexed payer, uint32 gpus, uint256 amount, uint256 totalGpus)')
    for (const [s, gpus] of [[sa, 2], [sb, 1]] as const) {
      // staked by itself (payer = provider), from its own balance: faucet money minus stake minus gas
      const events = await client.getLogs({ address: settlementAddress(), event: staked, args: { provider: s.account }, fromBlock: 0n })
      assert.is(events.length, 1, `one stake for ${String(s.account)}`)
      assert.is(events[0].args.payer?.toLowerCase(), String(s.account).toLowerCase())
      assert.is(events[0].args.gpus, gpus)
      const stake = events[0].args.amount as bigint
      assert.is(stake, BigInt(gpus) * 100_000n * 10n ** 18n)
      const balance = await client.getBalance({ address: s.account })
      assert.ok(balance > 1000n * 10n ** 18n, 'funded above the faucet threshold')
      const gas = FAUCET_AMOUNT_WEI - stake - balance
      assert.ok(gas > 0n && gas < 10n ** 18n, `spent only stake + gas (${gas} wei of gas)`)
    }
    assert.is(await client.getChainId(), 31337)
  } finally {
    await net.stop()
  }
})

test.after(() => { rmSync(dir, { recursive: true, force: true }) })

test.run()
