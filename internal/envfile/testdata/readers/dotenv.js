// Reads .env files with node dotenv's parse, as Mastodon's streaming server
// reads .env.production, for internal/envfile's differential test. dotenv
// comes from npm: npm ci --prefix internal/envfile/testdata/readers
//
//   node dotenv.js < manifest.jsonl > out.jsonl
//
// Each manifest line is {"path": FILE, ...}. The first output line names
// dotenv's version; then one line per file: {"keys": {KEY: VALUE}}.
'use strict'
const fs = require('fs')
const readline = require('readline')
const dotenv = require('dotenv')

const out = [JSON.stringify({ reader: 'node dotenv', version: require('dotenv/package.json').version, node: process.version })]
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
rl.on('line', (line) => {
  const item = JSON.parse(line)
  const keys = dotenv.parse(fs.readFileSync(item.path))
  out.push(JSON.stringify({ keys }))
})
rl.on('close', () => {
  process.stdout.write(out.join('\n') + '\n')
})
