// boss's guard for OpenCode: a plugin whose `tool.execute.before` hook runs `worker guard` before
// each shell command and file change, and throws when the guard blocks (the guard's stderr is
// the reason the model sees). The guard's argv comes from BOSS_OPENCODE_GUARD (JSON), set by
// the worker; without it (the planner) every tool that can change something is refused.
// Tools nobody judged (an MCP tool, a custom tool) are refused too. Fails closed.
import { spawnSync } from "node:child_process"

// `task` starts a subagent in this same process: its own tool calls come through this hook.
// `invalid` is OpenCode's answer to a call of a tool that does not exist: it only says so.
const READ_ONLY = new Set(["read", "grep", "glob", "list", "todoread", "todowrite", "skill", "question", "task",
  "invalid"])
const PAYLOADS = {
  bash: (a, dir) => ["Bash", { command: a.command }, a.workdir || dir],
  edit: (a, dir) => ["Edit", { file_path: a.filePath }, dir],
  write: (a, dir) => ["Write", { file_path: a.filePath }, dir],
  multiedit: (a, dir) => ["Edit", { file_path: a.filePath }, dir],
  apply_patch: (a, dir) => ["apply_patch", { patch: a.patchText ?? a.patch ?? "" }, dir],
  patch: (a, dir) => ["apply_patch", { patch: a.patchText ?? a.patch ?? "" }, dir],
}

export const BossGuard = async ({ directory }) => ({
  "tool.execute.before": async (input, output) => {
    if (READ_ONLY.has(input.tool)) return
    const argv = process.env.BOSS_OPENCODE_GUARD ? JSON.parse(process.env.BOSS_OPENCODE_GUARD) : null
    if (!argv) throw new Error(`BLOCKED: this run is read-only (boss): ${input.tool} is not allowed`)
    const payload = PAYLOADS[input.tool]
    if (!payload) throw new Error(`BLOCKED: boss's guard does not judge the tool ${input.tool}, so it is not allowed`)
    const [tool_name, tool_input, cwd] = payload(output.args || {}, directory)
    const run = spawnSync(argv[0], argv.slice(1), {
      input: JSON.stringify({ tool_name, tool_input, cwd }), encoding: "utf8", timeout: 120000,
    })
    if (run.status !== 0) {
      throw new Error((run.stderr || "").trim() || `BLOCKED: boss's guard failed (${run.error || run.signal || run.status})`)
    }
  },
})
