#include "worker/preparer.h"

#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "common/log.h"
#include "worker/worker.h"

namespace kiln::worker {

Status as_update_failure(const Status& s) {
  std::string code = "InternalError";
  if (s.type() == "Runtime.InitError" || s.type() == "Runtime.ExitError") code = "FunctionError.RuntimeInitError";
  if (s.type() == "Runtime.InitTimeout") code = "FunctionError.InitTimeout";
  if (s.type() == "Runtime.InvalidEntrypoint") code = "FunctionError.InvalidEntryPoint";
  // The message may be the runtime's own error document: any bytes, any depth. The
  // reason is stored and shown, so it is valid UTF-8 and never re-dumps deep input.
  std::string reason = s.message();
  auto doc = json_text::parse_bounded(s.message());
  if (doc.is_object() && doc.contains("errorMessage")) {
    const auto& type = doc["errorType"];
    const auto& message = doc["errorMessage"];
    reason = (type.is_string() ? type.get<std::string>() : std::string("Runtime.Unknown")) + ": " +
             (message.is_string() ? message.get<std::string>() : json_text::dump(message));
  }
  reason = json_text::valid_utf8(reason);
  return {400, code, reason};
}

namespace {

// One preparation as a job of the init queue: starts the sandbox, or reports no room.
void start_preparation(placement::PlacementService& placement, assignment::AssignmentService& assignment,
                       const registry::FunctionVersionPtr& f, const std::function<void(Status)>& done,
                       InitQueue::Outcome outcome) {
  auto* w = dynamic_cast<Worker*>(placement.pick());
  if (!w) return outcome.no_room();
  if (w->memory_limit_mb() != 0 && f->memory_mb > w->memory_limit_mb()) {
    // Room can never come: no invoke of it can run on this host either (they answer 429).
    done({400, "InsufficientCapacity",
          "The function's MemorySize (" + std::to_string(f->memory_mb) + " MB) exceeds the host's sandbox memory (" +
              std::to_string(w->memory_limit_mb()) + " MB)."});
    return outcome.finished();
  }
  if (!make_room(*w, assignment, f->sandbox_key(), f->memory_mb)) return outcome.no_room();
  w->create(
      f, [&assignment](const std::shared_ptr<Environment>& env) { assignment.remove(env); },
      [&assignment, done, outcome](StatusOr<std::shared_ptr<Environment>> env) {
        if (!env.ok() && env.status().http_status() == 429) return outcome.no_room();  // another took the room
        if (!env.ok()) {
          done(as_update_failure(env.status()));
          return outcome.finished();
        }
        auto e = *env;
        assignment.add_warming(e);  // an invoke of a new function may take it before it is ready
        e->await_init([&assignment, e, done, outcome](Status s) {
          // Idle if no invoke took it; a failed one is retired (or, if an invoke took
          // it, that invoke reports the init error and releases it).
          assignment.finish_warming(e, s.ok());
          done(s.ok() ? s : as_update_failure(s));
          outcome.finished();
        });
      });
}

}  // namespace

registry::Preparer make_preparer(placement::PlacementService& placement, assignment::AssignmentService& assignment,
                                 InitQueue& queue) {
  return [&placement, &assignment, &queue](const registry::FunctionVersionPtr& f, std::function<void(Status)> done) {
    InitQueue::Job job;
    job.start = [&placement, &assignment, f, done](InitQueue::Outcome outcome) {
      start_preparation(placement, assignment, f, done, std::move(outcome));
    };
    job.give_up = [f, done] {
      log::warn("no room for a sandbox of " + f->arn() + " for too long: prepared without one");
      done(Status::Ok());
    };
    queue.submit(std::move(job));
  };
}

}  // namespace kiln::worker
