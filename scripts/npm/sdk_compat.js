// Compatibility check of bai serve with the official JavaScript SDK for Batch AI
// (@azure/arm-batchai, unchanged): create a workspace, an experiment and a job,
// get it, list it (following nextLink), list its output files, terminate it
// (long-running operation), delete it.  Prints one JSON line per step.
//
// Usage: node sdk_compat.js URL TOKEN SUBSCRIPTION
// The token goes through an ordinary TokenCredential; the SDK's runtime
// (@azure/ms-rest-js) signs requests with it over the http:// loopback URL.
"use strict";
const { BatchAIManagementClient } = require("@azure/arm-batchai");

const [url, token, subscription] = process.argv.slice(2);
const credential = {
  getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3600 * 1000 }),
};
const client = new BatchAIManagementClient(credential, subscription, {
  baseUri: url,
  longRunningOperationRetryTimeout: 0,
});

function step(name, value) {
  process.stdout.write(JSON.stringify({ step: name, value }) + "\n");
}

async function main() {
  const rg = "sdk-rg", ws = "sdkws", exp = "sdkexp";
  const w = await client.workspaces.create(rg, ws, { location: "eastus", tags: { via: "sdk" } });
  step("workspace", { name: w.name, location: w.location, provisioningState: w.provisioningState, tags: w.tags });
  const e = await client.experiments.create(rg, ws, exp);
  step("experiment", { name: e.name, provisioningState: e.provisioningState });
  const params = {
    cluster: { id: "local" },
    nodeCount: 1,
    stdOutErrPathPrefix: "$AZ_BATCHAI_MOUNT_ROOT/logs",
    customToolkitSettings: { commandLine: "echo from-sdk; sleep 60" },
    environmentVariables: [{ name: "A", value: "1" }],
    secrets: [{ name: "S", value: "sdk-secret" }],
  };
  const j = await client.jobs.create(rg, ws, exp, "sdkjob", params);
  step("job", { name: j.name, toolType: j.toolType, executionState: j.executionState, secrets: j.secrets });
  for (let i = 0; i < 3; i++) await client.jobs.create(rg, ws, exp, "extra" + i, params);
  const again = await client.jobs.create(rg, ws, exp, "sdkjob", params);
  step("recreate", { name: again.name, creationTime: again.creationTime.toISOString() === j.creationTime.toISOString() });
  let got;
  for (let i = 0; i < 800; i++) {
    got = await client.jobs.get(rg, ws, exp, "sdkjob");
    if (got.executionState === "running") break;
    await new Promise((r) => setTimeout(r, 25));
  }
  step("get", { executionState: got.executionState, startTime: !!(got.executionInfo && got.executionInfo.startTime) });
  const names = [];
  let page = await client.jobs.listByExperiment(rg, ws, exp, { maxResults: 2 });
  for (;;) {
    for (const x of page) names.push(x.name);
    if (!page.nextLink) break;
    page = await client.jobs.listByExperimentNext(page.nextLink);
  }
  step("list", names.sort());
  const files = await client.jobs.listOutputFiles(rg, ws, exp, "sdkjob", { outputdirectoryid: "stdouterr" });
  step("files", files.map((f) => ({ name: f.name, fileType: f.fileType, hasUrl: !!f.downloadUrl })));
  await client.jobs.terminate(rg, ws, exp, "sdkjob");
  const t = await client.jobs.get(rg, ws, exp, "sdkjob");
  step("terminated", { executionState: t.executionState, error: t.executionInfo.errors[0].code });
  await client.jobs.deleteMethod(rg, ws, exp, "sdkjob");
  try {
    await client.jobs.get(rg, ws, exp, "sdkjob");
    step("deleted", { statusCode: 200 });
  } catch (err) {
    step("deleted", { statusCode: err.statusCode, code: err.code });
  }
  await client.workspaces.deleteMethod(rg, ws);
  const left = await client.workspaces.listByResourceGroup(rg);
  step("workspaces", left.map((x) => x.name));
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ step: "error", value: String(err && (err.stack || err)) }) + "\n");
  process.exit(1);
});
