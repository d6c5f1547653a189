// The admin actions `kiln serve` registers for the operator's CLI (POST /admin/<Action>,
// root account only; see api/admin.h):
//   Status          {}                         -> {"Host":{...}, "Functions":[...], "Gauges":{...}}
//   ListSandboxes   {"FunctionName"?}          -> {"Sandboxes":[{"Id","AccountId","FunctionName",
//                                                 "Version","State","AgeSeconds","MemorySizeMB",
//                                                 "MaxMemoryUsedMB"}]}
//   CreateAccessKey {"AccountId"?}             -> {"AccessKeyId","SecretAccessKey","AccountId"}
//                   (no AccountId: a new 12-digit account; else an account that has a key)
//   RevokeAccessKey {"AccessKeyId"}            -> {} (effective at once; not the caller's key)
//   ListAccessKeys  {"AccountId"?}             -> {"AccessKeys":[{"AccessKeyId","AccountId"}]}
#pragma once

#include "api/admin.h"
#include "api/key_ring.h"
#include "assignment/assignment.h"
#include "metrics/metrics.h"
#include "registry/store.h"
#include "worker/worker.h"

namespace kiln::cli {

struct AdminDeps {
  registry::Store& store;
  api::KeyRing& keys;
  assignment::AssignmentService& assignment;
  worker::Worker& worker;
  metrics::Metrics& metrics;
  uint64_t max_sandboxes = 0;
};

// Everything in deps must outlive serving.
void register_admin_actions(api::AdminApi& admin, AdminDeps deps);
// Host gauges: sandboxes by state, live sandboxes, memory reserved, host memory used.
void register_host_metrics(metrics::Metrics& metrics, assignment::AssignmentService& assignment,
                           worker::Worker& worker);

}  // namespace kiln::cli
