// Generates vectors.json: MQTT 3.1.1 packets encoded by an independent implementation,
// mqtt-packet (the packet generator and parser of MQTT.js), for the interop test of
// haka-codec (../interop.rs).
//
//   cd crates/haka-codec/tests/interop && npm ci && node generate.mjs
//
// Each vector is { name, packet, hex }: `packet` is the object given to mqtt-packet's
// `generate` (as JSON, see `toJson` for how byte buffers are written) and `hex` the bytes it
// produced. Every vector is parsed back with mqtt-packet's own parser before it is written.
//
// Deliberately NOT generated, because mqtt-packet emits them although MQTT 3.1.1 forbids them
// (checked with mqtt-packet 9.0.2; haka-codec rightly refuses these bytes):
// - PUBLISH at QoS 0 with `dup: true` (0x38): [MQTT-3.3.1-2] the DUP flag MUST be 0 for QoS 0.
// - Packet identifier 0 in PUBLISH QoS > 0, PUBACK, SUBSCRIBE, ...: [MQTT-2.3.1-1] a packet
//   identifier MUST be non-zero.
// - PUBLISH with a wildcard in the topic (`a/+`): [MQTT-3.3.2-2] the Topic Name MUST NOT
//   contain wildcard characters.
// - PUBLISH with an empty topic: [MQTT-4.7.3-1] topic names MUST be at least one character.
// - Strings with U+0000: [MQTT-1.5.3-2] a UTF-8 encoded string MUST NOT include U+0000.
//   (Strings with lone surrogates are not generated either: [MQTT-1.5.3-1] forbids encoding
//   U+D800-U+DFFF, and mqtt-packet writes U+FFFD instead, so the bytes differ from the object.)
// - CONNACK with session present and a non-zero return code: [MQTT-3.2.2-4].
// - CONNACK return codes 6-255, SUBACK return codes other than 0, 1, 2 and 0x80: reserved
//   (section 3.2.2.3, [MQTT-3.9.3-2]).
// - CONNECT with will QoS 3 (flags 0x1e): [MQTT-3.1.2-14].
// - SUBSCRIBE or UNSUBSCRIBE with `dup: true` (0x8a, 0xaa): [MQTT-3.8.1-1], [MQTT-3.10.1-1]
//   the fixed-header flags MUST be 0010. (PUBREL with `dup` makes mqtt-packet throw.)
// - SUBSCRIBE with a requested QoS of 3 (mqtt-packet silently writes 0, so the bytes do not
//   say what the object does), or with a misplaced wildcard (`a/#/b`): [MQTT-3.8.3-4],
//   [MQTT-4.7.1-2].
// mqtt-packet itself refuses a password without a user name, an empty client id without clean
// session and an empty SUBSCRIBE, so those cannot be generated.

import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import mqtt from 'mqtt-packet'

const OPTS = { protocolVersion: 4 }
const OUT = fileURLToPath(new URL('./vectors.json', import.meta.url))
const MQTT_PACKET_VERSION = JSON.parse(
  readFileSync(new URL('./node_modules/mqtt-packet/package.json', import.meta.url), 'utf8')
).version

// Large payloads are described in vectors.json as { xorshift32: seed, length } rather than
// spelled out (the bytes are in `hex` anyway). interop.rs regenerates them the same way.
const GENERATED = new WeakMap()

function xorshift32 (seed, length) {
  const out = Buffer.alloc(length)
  let x = seed >>> 0
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    out[i] = x & 0xff
  }
  GENERATED.set(out, { xorshift32: seed, length })
  return out
}

/** The packet object as JSON: a generated buffer as { xorshift32, length }, others as { hex }. */
function toJson (value) {
  if (Buffer.isBuffer(value)) {
    return GENERATED.get(value) ?? { hex: value.toString('hex') }
  }
  if (Array.isArray(value)) return value.map(toJson)
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]))
  }
  return value
}

const vectors = []

function add (name, packet) {
  vectors.push({ name, packet })
}

// ---------------------------------------------------------------------------------------------
// CONNECT (3.1)

function connect (fields) {
  return { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, ...fields }
}

add('connect/minimal', connect({ clientId: 'haka', clean: true, keepalive: 60 }))
add('connect/clean-session-false', connect({ clientId: 'persistent-1', clean: false, keepalive: 30 }))
add('connect/keepalive-0', connect({ clientId: 'k0', clean: true, keepalive: 0 }))
add('connect/keepalive-65535', connect({ clientId: 'kmax', clean: true, keepalive: 65535 }))
add('connect/will-qos0', connect({
  clientId: 'w0',
  clean: true,
  keepalive: 60,
  will: { topic: 'clients/w0/status', payload: 'offline', qos: 0, retain: false }
}))
add('connect/will-qos0-retain', connect({
  clientId: 'w0r',
  clean: true,
  keepalive: 60,
  will: { topic: 'clients/w0r/status', payload: 'offline', qos: 0, retain: true }
}))
add('connect/will-qos1-retain', connect({
  clientId: 'w1r',
  clean: true,
  keepalive: 60,
  will: { topic: 'clients/w1r/status', payload: 'offline', qos: 1, retain: true }
}))
add('connect/will-qos2-retain', connect({
  clientId: 'w2r',
  clean: false,
  keepalive: 60,
  will: { topic: 'clients/w2r/status', payload: 'offline', qos: 2, retain: true }
}))
add('connect/will-qos2', connect({
  clientId: 'w2',
  clean: true,
  keepalive: 60,
  will: { topic: 'clients/w2/status', payload: 'gone', qos: 2, retain: false }
}))
add('connect/will-empty-message', connect({
  clientId: 'we',
  clean: true,
  keepalive: 60,
  will: { topic: 'clients/we/status', payload: Buffer.alloc(0), qos: 1, retain: false }
}))
add('connect/will-binary-message', connect({
  clientId: 'wb',
  clean: true,
  keepalive: 60,
  will: { topic: 'clients/wb/status', payload: Buffer.from([0x00, 0xff, 0xc3, 0x28, 0x80, 0x7f]), qos: 1, retain: false }
}))
add('connect/username-only', connect({ clientId: 'u1', clean: true, keepalive: 60, username: 'alice' }))
add('connect/username-password', connect({
  clientId: 'u2',
  clean: true,
  keepalive: 60,
  username: 'alice',
  password: 'correct horse battery staple'
}))
add('connect/username-binary-password', connect({
  clientId: 'u3',
  clean: true,
  keepalive: 60,
  username: 'bob',
  password: Buffer.from([0x00, 0x01, 0xfe, 0xff, 0xc0, 0xaf])
}))
add('connect/empty-username-and-password', connect({
  clientId: 'u4',
  clean: true,
  keepalive: 60,
  username: '',
  password: ''
}))
add('connect/empty-client-id-clean', connect({ clientId: '', clean: true, keepalive: 60 }))
add('connect/unicode-client-id', connect({ clientId: 'クライアント-ü-🦀', clean: true, keepalive: 60 }))
add('connect/everything', connect({
  // Longer than the 23 bytes a server must accept; a server MAY accept more (3.1.3.1).
  clientId: 'a-client-identifier-longer-than-23-bytes',
  clean: false,
  keepalive: 65535,
  will: { topic: 'clients/€/last-will', payload: 'connection lost 💥', qos: 2, retain: true },
  username: 'ユーザー',
  password: 'pässwörd'
}))

// ---------------------------------------------------------------------------------------------
// CONNACK (3.2)

add('connack/accepted', { cmd: 'connack', returnCode: 0, sessionPresent: false })
add('connack/accepted-session-present', { cmd: 'connack', returnCode: 0, sessionPresent: true })
const REFUSALS = [
  'unacceptable-protocol-version',
  'identifier-rejected',
  'server-unavailable',
  'bad-username-or-password',
  'not-authorized'
]
REFUSALS.forEach((reason, i) => {
  add(`connack/refused-${i + 1}-${reason}`, { cmd: 'connack', returnCode: i + 1, sessionPresent: false })
})

// ---------------------------------------------------------------------------------------------
// PUBLISH (3.3)

function publish (fields) {
  return { cmd: 'publish', qos: 0, dup: false, retain: false, ...fields }
}

add('publish/qos0', publish({ topic: 'a/b', payload: 'hello' }))
add('publish/qos0-retain', publish({ topic: 'a/b', payload: 'retained', retain: true }))
add('publish/qos1', publish({ topic: 'a/b', payload: 'hello', qos: 1, messageId: 1 }))
add('publish/qos1-id-65535', publish({ topic: 'a/b', payload: 'hello', qos: 1, messageId: 65535 }))
add('publish/qos1-id-4660', publish({ topic: 'a/b', payload: 'hello', qos: 1, messageId: 0x1234 }))
add('publish/qos1-retain', publish({ topic: 'a/b', payload: 'hello', qos: 1, messageId: 10, retain: true }))
add('publish/qos1-dup', publish({ topic: 'a/b', payload: 'again', qos: 1, messageId: 11, dup: true }))
add('publish/qos2', publish({ topic: 'a/b', payload: 'hello', qos: 2, messageId: 2 }))
add('publish/qos2-id-65535', publish({ topic: 'a/b', payload: 'hello', qos: 2, messageId: 65535 }))
add('publish/qos2-retain', publish({ topic: 'a/b', payload: 'hello', qos: 2, messageId: 12, retain: true }))
add('publish/qos2-dup', publish({ topic: 'a/b', payload: 'again', qos: 2, messageId: 13, dup: true }))
add('publish/qos2-dup-retain', publish({ topic: 'a/b', payload: 'again', qos: 2, messageId: 14, dup: true, retain: true }))
add('publish/empty-payload-qos1-retain', publish({ topic: 'a/b', payload: Buffer.alloc(0), qos: 1, messageId: 15, retain: true }))
add('publish/unicode-topic', publish({ topic: 'capteurs/température/🌡/数据', payload: '21.5' }))
add('publish/unicode-payload', publish({ topic: 'chat', payload: 'héllo wörld — 你好 🦀', qos: 1, messageId: 16 }))
add('publish/single-char-topic', publish({ topic: 't', payload: 'x' }))
add('publish/leading-slash-topic', publish({ topic: '/a/b', payload: 'x' }))
add('publish/trailing-slash-topic', publish({ topic: 'a/b/', payload: 'x' }))
add('publish/sys-topic', publish({ topic: '$SYS/broker/uptime', payload: '12345 seconds' }))
add('publish/topic-with-spaces', publish({ topic: 'living room/lamp one', payload: 'on' }))
add('publish/binary-payload-all-bytes', publish({
  topic: 'bin',
  payload: Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
  qos: 1,
  messageId: 17
}))
add('publish/binary-payload-invalid-utf8', publish({
  topic: 'bin',
  payload: Buffer.from([0x00, 0xc3, 0x28, 0xa0, 0xa1, 0xf0, 0x28, 0x8c, 0xbc, 0xff, 0xfe, 0x00])
}))

// Payload sizes as such.
for (const [i, size] of [0, 1, 127, 128, 16383, 16384].entries()) {
  add(`publish/payload-${size}-bytes`, publish({ topic: 'size', payload: xorshift32(0x9e3779b9 + i, size) }))
}

// Remaining lengths exactly at the boundaries of its variable-length encoding (2.2.3): 127 is
// the largest that takes one byte, 128 the smallest that takes two, 16,383 and 16,384 the same
// for two and three bytes. Topic "t" at QoS 0 costs 3 bytes, at QoS 1 5 bytes. 2,097,152 (four
// bytes) is left out: it would put 4 MiB of hex in vectors.json.
for (const [i, rl] of [127, 128, 16383, 16384].entries()) {
  add(`publish/remaining-length-${rl}`, publish({ topic: 't', payload: xorshift32(0x2545f491 + i, rl - 3) }))
}
add('publish/remaining-length-128-qos1', publish({ topic: 't', payload: xorshift32(7, 128 - 5), qos: 1, messageId: 128 }))

// ---------------------------------------------------------------------------------------------
// PUBACK, PUBREC, PUBREL, PUBCOMP (3.4-3.7), UNSUBACK (3.11)

for (const cmd of ['puback', 'pubrec', 'pubrel', 'pubcomp', 'unsuback']) {
  for (const messageId of [1, 65535]) {
    add(`${cmd}/id-${messageId}`, { cmd, messageId })
  }
}
add('puback/id-4660', { cmd: 'puback', messageId: 0x1234 })

// ---------------------------------------------------------------------------------------------
// SUBSCRIBE (3.8)

function subscribe (messageId, subscriptions) {
  return { cmd: 'subscribe', messageId, subscriptions }
}

add('subscribe/one-filter-qos0', subscribe(1, [{ topic: 'a/b', qos: 0 }]))
add('subscribe/one-filter-qos1', subscribe(2, [{ topic: 'a/b', qos: 1 }]))
add('subscribe/one-filter-qos2', subscribe(3, [{ topic: 'a/b', qos: 2 }]))
add('subscribe/id-65535', subscribe(65535, [{ topic: 'a/b', qos: 1 }]))
add('subscribe/several-qos-0-1-2', subscribe(4, [
  { topic: 'sensors/temperature', qos: 0 },
  { topic: 'sensors/humidity', qos: 1 },
  { topic: 'alarms', qos: 2 }
]))
add('subscribe/wildcard-plus', subscribe(5, [{ topic: 'sensors/+/temperature', qos: 1 }]))
add('subscribe/wildcard-hash', subscribe(6, [{ topic: 'sensors/#', qos: 2 }]))
add('subscribe/wildcards-alone', subscribe(7, [
  { topic: '#', qos: 0 },
  { topic: '+', qos: 1 },
  { topic: '+/+', qos: 2 },
  { topic: '/+', qos: 0 },
  { topic: '+/#', qos: 1 },
  { topic: 'a/+/b/#', qos: 2 }
]))
add('subscribe/sys-filter', subscribe(8, [{ topic: '$SYS/#', qos: 0 }]))
add('subscribe/unicode-filter', subscribe(9, [{ topic: 'capteurs/+/température', qos: 1 }]))

// ---------------------------------------------------------------------------------------------
// SUBACK (3.9)

add('suback/granted-0', { cmd: 'suback', messageId: 1, granted: [0] })
add('suback/granted-1', { cmd: 'suback', messageId: 2, granted: [1] })
add('suback/granted-2', { cmd: 'suback', messageId: 3, granted: [2] })
add('suback/failure', { cmd: 'suback', messageId: 4, granted: [0x80] })
add('suback/several', { cmd: 'suback', messageId: 5, granted: [0, 1, 2, 0x80, 1] })
add('suback/id-65535', { cmd: 'suback', messageId: 65535, granted: [2, 0x80] })

// ---------------------------------------------------------------------------------------------
// UNSUBSCRIBE (3.10)

add('unsubscribe/one', { cmd: 'unsubscribe', messageId: 1, unsubscriptions: ['a/b'] })
add('unsubscribe/several', {
  cmd: 'unsubscribe',
  messageId: 2,
  unsubscriptions: ['sensors/+/temperature', 'sensors/#', '#', 'capteurs/température']
})
add('unsubscribe/id-65535', { cmd: 'unsubscribe', messageId: 65535, unsubscriptions: ['x'] })

// ---------------------------------------------------------------------------------------------
// PINGREQ, PINGRESP, DISCONNECT (3.12-3.14)

add('pingreq', { cmd: 'pingreq' })
add('pingresp', { cmd: 'pingresp' })
add('disconnect', { cmd: 'disconnect' })

// ---------------------------------------------------------------------------------------------
// Generate, self-check with mqtt-packet's parser, write.

/** Checks that `actual` (parsed) holds every field of `expected` (given), recursively. */
function checkSubset (expected, actual, path) {
  if (Buffer.isBuffer(expected) || (typeof expected === 'string' && Buffer.isBuffer(actual))) {
    if (!Buffer.isBuffer(actual) || !actual.equals(Buffer.from(expected))) {
      throw new Error(`${path}: expected ${JSON.stringify(toJson(expected))}, parsed ${JSON.stringify(toJson(actual))}`)
    }
  } else if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      throw new Error(`${path}: expected ${expected.length} entries, parsed ${JSON.stringify(toJson(actual))}`)
    }
    expected.forEach((e, i) => checkSubset(e, actual[i], `${path}[${i}]`))
  } else if (expected !== null && typeof expected === 'object') {
    for (const [k, v] of Object.entries(expected)) checkSubset(v, actual?.[k], `${path}.${k}`)
  } else if (expected !== actual) {
    throw new Error(`${path}: expected ${JSON.stringify(expected)}, parsed ${JSON.stringify(toJson(actual))}`)
  }
}

function parseAll (bytes) {
  const parser = mqtt.parser(OPTS)
  const packets = []
  parser.on('packet', (p) => packets.push(p))
  parser.on('error', (e) => { throw e })
  const left = parser.parse(bytes)
  return { packets, left }
}

const names = new Set()
const out = vectors.map(({ name, packet }) => {
  if (names.has(name)) throw new Error(`duplicate vector name ${name}`)
  names.add(name)

  const bytes = mqtt.generate(packet, OPTS)

  // Self-check: mqtt-packet parses its own bytes back to exactly one packet with every field
  // we gave it, and generates the same bytes from what it parsed.
  const { packets, left } = parseAll(bytes)
  if (packets.length !== 1 || left !== 0) {
    throw new Error(`${name}: parsed ${packets.length} packets, ${left} bytes left`)
  }
  checkSubset(packet, packets[0], name)
  const again = mqtt.generate(packets[0], OPTS)
  if (!again.equals(bytes)) {
    throw new Error(`${name}: regenerated ${again.toString('hex')} != ${bytes.toString('hex')}`)
  }

  const json = toJson(packet)
  // The JSON form must describe the same packet: round trip it through JSON.
  if (!isDeepStrictEqual(JSON.parse(JSON.stringify(json)), json)) {
    throw new Error(`${name}: packet does not survive JSON`)
  }
  return { name, packet: json, hex: bytes.toString('hex') }
})

const cmds = new Set(out.map((v) => v.packet.cmd))
if (cmds.size !== 14) throw new Error(`expected the 14 packet types, got ${[...cmds].join(', ')}`)

writeFileSync(OUT, JSON.stringify(out, null, 2) + '\n')
console.log(`mqtt-packet ${MQTT_PACKET_VERSION}: wrote ${out.length} vectors (${cmds.size} packet types) to ${OUT}`)
