// The official JavaScript SDK's side of scripts/bench/client.sh: COUNT job
// creates through @azure/arm-batchai (unchanged), CONCURRENCY promises in flight.
//   NODE_PATH=scripts/npm/node_modules node client_sdk.js URL TOKEN SUBSCRIPTION RESOURCE_GROUP WORKSPACE EXPERIMENT COUNT CONCURRENCY
// Prints "created N in S s (F failed)".
"use strict";
const { BatchAIManagementClient } = require("@azure/arm-batchai");

const [url, token, subscription, group, workspace, experiment, countText, concurrencyText] = process.argv.slice(2);
const count = Number(countText), concurrency = Number(concurrencyText);
const credential = { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3600 * 1000 }) };
const client = new BatchAIManagementClient(credential, subscription, { baseUri: url, longRunningOperationRetryTimeout: 0 });

async function main() {
  let next = 0, failed = 0;
  const t0 = process.hrtime.bigint();
  async function worker() {
    while (next < count) {
      const i = next++;
      const params = {
        cluster: { id: "local" }, nodeCount: 1, stdOutErrPathPrefix: "$AZ_BATCHAI_MOUNT_ROOT/logs",
        customToolkitSettings: { commandLine: "python3 train.py --lr 0.01 --batch 64 --seed " + i },
      };
      try {
        await client.jobs.create(group, workspace, experiment, "s" + String(i).padStart(5, "0"), params);
      } catch (err) {
        if (++failed <= 3) process.stderr.write(String(err) + "\n");
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stdout.write(`created ${count - failed} in ${seconds.toFixed(3)} s (${failed} failed)\n`);
  process.exit(failed ? 1 : 0);
}
main();
