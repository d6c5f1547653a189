#include "worker/snapshotter.h"

#include <boost/asio/post.hpp>

#include <chrono>

#include "common/log.h"
#include "worker/capacity.h"
#include "worker/preparer.h"
#include "worker/snapshot_restore.h"
#include "worker/worker.h"

namespace kiln::worker {
namespace {

namespace asio = boost::asio;

// An init failure of the snapshot's sandbox, as the version's StateReasonCode: the
// runtime's own failures as for any update; a before-snapshot hook's as FunctionError.
Status as_snapshot_failure(const Status& s) {
  if (s.type() == "Runtime.BeforeSnapshotError") {
    Status hook = as_update_failure({400, "Runtime.InitError", s.message()});
    return {400, "FunctionError", hook.message()};
  }
  return as_update_failure(s);
}

// Checkpoints env (at its snapshot point) into the store; runs on the snapshot pool.
Status snapshot_environment(const std::shared_ptr<Environment>& env, const registry::FunctionVersionPtr& v,
                            SnapshotStore& store) {
  auto point = env->snapshot_point();
  if (!point) return ServiceError("the sandbox died before its snapshot was taken");
  auto partial = store.begin(*v);
  if (!partial.ok()) return partial.status();
  SnapshotMeta meta;
  meta.account = v->account_id;
  meta.function = v->name;
  meta.version = v->version;
  meta.revision = v->revision_id;
  meta.replay = point->replay;
  meta.taken_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
  Status s = take_snapshot(point->pid, v->ephemeral_mb, *partial, meta);
  if (s.ok()) s = store.commit(*v, *partial, meta);
  if (!s.ok()) {
    store.abort(*partial);
    return {500, "InternalError", "The snapshot could not be taken: " + s.message()};
  }
  log::info("snapshot of " + v->arn() + ":" + v->version + ": " + std::to_string(meta.bytes >> 20) + " MiB, frozen " +
            std::to_string(static_cast<int>(meta.checkpoint_ms)) + " ms");
  return Status::Ok();
}

void start_snapshot(placement::PlacementService& placement, assignment::AssignmentService& assignment,
                    SnapshotStore& store, asio::thread_pool& pool, const registry::FunctionVersionPtr& v,
                    const std::function<void(Status)>& done, InitQueue::Outcome outcome) {
  auto* w = dynamic_cast<Worker*>(placement.pick());
  if (!w) return outcome.no_room();
  if (w->memory_limit_mb() != 0 && v->memory_mb > w->memory_limit_mb()) {
    done({400, "InsufficientCapacity",
          "The function's MemorySize (" + std::to_string(v->memory_mb) + " MB) exceeds the host's sandbox memory (" +
              std::to_string(w->memory_limit_mb()) + " MB)."});
    return outcome.finished();
  }
  if (!make_room(*w, assignment, v->sandbox_key(), v->memory_mb)) return outcome.no_room();
  w->create(
      v, [](const std::shared_ptr<Environment>&) {},
      [&store, &pool, v, done, outcome](StatusOr<std::shared_ptr<Environment>> env) {
        if (!env.ok() && env.status().http_status() == 429) return outcome.no_room();
        if (!env.ok()) {
          done(as_snapshot_failure(env.status()));
          return outcome.finished();
        }
        auto e = *env;
        e->await_init([&store, &pool, e, v, done, outcome](Status s) {
          if (!s.ok()) {
            e->retire();
            done(as_snapshot_failure(s));
            return outcome.finished();
          }
          asio::post(pool, [&store, e, v, done, outcome] {
            Status taken = ServiceError("snapshot failed");
            try {
              taken = snapshot_environment(e, v, store);
            } catch (const std::exception& ex) {
              taken = {500, "InternalError", std::string("The snapshot could not be taken: ") + ex.what()};
            }
            e->retire();  // Lambda discards the environment it snapshotted
            done(taken);
            outcome.finished();
          });
        });
      },
      StartKind::kForSnapshot);
}

}  // namespace

registry::Snapshotter make_snapshotter(placement::PlacementService& placement,
                                       assignment::AssignmentService& assignment, InitQueue& queue,
                                       SnapshotStore& store, asio::thread_pool& pool) {
  return [&placement, &assignment, &queue, &store, &pool](const registry::FunctionVersionPtr& v,
                                                           std::function<void(Status)> done) {
    InitQueue::Job job;
    job.start = [&placement, &assignment, &store, &pool, v, done](InitQueue::Outcome outcome) {
      start_snapshot(placement, assignment, store, pool, v, done, std::move(outcome));
    };
    job.give_up = [v, done] {
      done({500, "InsufficientCapacity",
            "No room for a sandbox to snapshot " + v->arn() + ":" + v->version + " for too long; publish it again."});
    };
    queue.submit(std::move(job));
  };
}

}  // namespace kiln::worker
