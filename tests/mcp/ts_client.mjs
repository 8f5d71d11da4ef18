// A client mirrorfs did not write: the TypeScript MCP SDK's, over stdio.
// node ts_client.mjs NODE_DEPS_DIR COMMAND ARGS... ; prints one JSON object of what it saw.
import { createRequire } from "node:module";
import { join } from "node:path";

const [depsDir, command, ...args] = process.argv.slice(2);
const require = createRequire(join(depsDir, "package.json"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");

const client = new Client({ name: "TS SDK Client", version: "1.0.0" });
const transport = new StdioClientTransport({ command, args, env: process.env, stderr: "inherit" });
await client.connect(transport);

const out = { server: client.getServerVersion(), instructions: client.getInstructions() };
const call = async (name, args) => {
  const r = await client.callTool({ name, arguments: args });
  return { isError: !!r.isError, text: r.content[0].text, data: r.structuredContent };
};
out.tools = (await client.listTools()).tools.map((t) => ({ name: t.name, annotations: t.annotations }));
const remembered = await call("memory_remember", { content: "The TypeScript client likes oolong tea", tags: ["tea"] });
out.remember = remembered;
out.search = await call("memory_search", { query: "oolong" });
const path = remembered.data.path;
out.read = await call("memory_read", { path });
out.stale = await call("memory_edit", { path, expected_sha256: "0".repeat(64), command: "append", text: "never" });
out.edit = await call("memory_edit", { path, expected_sha256: out.read.data.sha256, command: "append", text: "Brewed at 90 degrees." });
out.session = await call("session_log", { role: "user", content: "Hello from TypeScript" });
out.status = await call("mirror_status", {});
out.escape = await call("memory_read", { path: "%2e%2e/%2e%2e/etc/passwd.md" });
await client.close();
console.log(JSON.stringify(out));
