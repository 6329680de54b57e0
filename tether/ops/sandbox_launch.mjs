// Tether's launcher of one sandboxed agent process, on Anthropic's sandbox runtime (srt).
//
//   node sandbox_launch.mjs SRT_DIR PLAN_FD EVENTS_FD
//
// It loads srt first, then waits for its plan on the pipe PLAN_FD (written by
// tether/ops/sandbox.py, read to its end): `srt`, the sandbox runtime's own settings, and
// `tether`, the argv to run, its working folder and environment, and the variables to clear
// inside. So a worker keeps one launcher started ahead of its agent, and an agent's start does
// not wait for node or srt to load; the plan, which holds the secrets the proxy injects, never
// touches a disk. A launcher whose pipe closes with no plan exits. One launcher, one agent
// process: srt's SandboxManager is process-wide, so its proxies, its allow list and its
// credential masks are this agent's alone.
//
// What the launcher tells Tether goes to EVENTS_FD (never the agent's stdout or stderr, which
// the agent can write): one JSON line per connection the sandbox refused, and a `ready` line.
// The sandboxed command holds neither descriptor (see below).
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const [srtDir, planFd, eventsFd] = process.argv.slice(2)
// The two pipes come from Tether open across exec, and Node gives its children every such
// descriptor: the events pipe is reopened here close-on-exec (Node opens all its files so) and
// the inherited descriptor closed, so that neither the sandbox nor the agent holds it; the plan
// pipe is closed once read, before anything is started.
const eventsOwn = fs.openSync(`/proc/self/fd/${eventsFd}`, 'w')
fs.closeSync(Number(eventsFd))
const entry = path.join(srtDir, 'node_modules', '@anthropic-ai', 'sandbox-runtime', 'dist', 'index.js')
const { SandboxManager } = await import(pathToFileURL(entry).href)

const text = fs.readFileSync(Number(planFd), 'utf8') // to its end: Tether closes it when sent
fs.closeSync(Number(planFd))
if (text === '') process.exit(0) // a spare launcher no agent needed
const plan = JSON.parse(text)

// Written off the event loop: a slow reader never stalls the proxies.
let events = fs.createWriteStream(null, { fd: eventsOwn })
events.on('error', () => { events = null }) // Tether stopped listening
function tell(event) {
  if (events !== null) events.write(JSON.stringify(event) + '\n')
}

const REASON = plan.tether.refusal_reason
// A host no rule allows is refused with the reason the agent (and its model) reads.
async function ask() {
  return SandboxManager.askCallbackDenyReason ? { allow: false, reason: REASON } : false
}

// The agent's environment is the launcher's from here on: srt reads each masked variable's
// real value from its own environment when it wraps the command, and hands the sandbox a
// placeholder instead (the tools it runs are named by absolute path in its settings).
// srt's own sockets and mount points go to the launcher's private folder (hidden from the
// sandbox), never the agent's TMPDIR, which the agent can write.
for (const name of Object.keys(process.env)) delete process.env[name]
Object.assign(process.env, plan.tether.env, { TMPDIR: plan.tether.private_tmp })

await SandboxManager.initialize(plan.srt, ask)
// Every refused connection, whichever rule refused it (not on the list, a name that resolved
// to loopback, link-local or metadata addresses), is a violation of the proxy's: told to
// Tether for the audit. The store hands its listeners the tail, newest last.
const NETWORK = /^deny network-outbound (\S+?):(\d+)\b\s*(.*)$/
SandboxManager.getSandboxViolationStore().subscribe(violations => {
  const last = violations[violations.length - 1]
  const found = last ? NETWORK.exec(String(last.line)) : null
  if (found) {
    tell({ event: 'refused', host: found[1], port: Number(found[2]), detail: found[3].slice(0, 300) })
  }
})

const quote = s => `'${String(s).replace(/'/g, `'\\''`)}'`
const clear = plan.tether.unset.map(name => `unset ${name}`).join('; ')
const command = `${clear ? clear + '; ' : ''}exec ${plan.tether.argv.map(quote).join(' ')}`
const wrapped = await SandboxManager.wrapWithSandbox(command)

const child = spawn(wrapped, {
  shell: '/bin/bash',
  cwd: plan.tether.cwd,
  env: { ...process.env, TMPDIR: plan.tether.env.TMPDIR },
  stdio: ['inherit', 'inherit', 'inherit'],
})
tell({ event: 'ready', pid: child.pid })

// A stop for the agent: the sandbox ends with its shell (bubblewrap --die-with-parent).
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(signal, () => { if (child.exitCode === null) child.kill('SIGKILL') })
}

const code = await new Promise(resolve => {
  child.on('exit', (status, signal) => resolve(status ?? (signal ? 128 + 9 : 1)))
  child.on('error', err => {
    process.stderr.write(`tether sandbox: could not start the sandbox: ${err.message}\n`)
    resolve(127)
  })
})
try {
  SandboxManager.cleanupAfterCommand()
  await SandboxManager.reset()
} catch {
  // The process is ending; srt's own exit handlers clean up what is left.
}
// What is still being written to Tether is written before the launcher exits.
if (events !== null) await new Promise(resolve => events.end(resolve))
process.exit(code)
