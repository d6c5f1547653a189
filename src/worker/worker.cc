#include "worker/worker.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/post.hpp>

#include <ctime>
#include <future>

#include "common/crypto.h"
#include "common/log.h"
#include "worker/snapshot_restore.h"

namespace kiln::worker {

namespace asio = boost::asio;

Worker::Worker(asio::io_context& io, sandbox::SandboxBackend& backend, LogStore& logs, WorkerOptions options)
    : io_(io), backend_(backend), logs_(logs), options_(std::move(options)),
      scale_rate_(options_.scale_rate),
      max_by_fds_(options_.max_sandboxes_by_fds ? options_.max_sandboxes_by_fds
                                                : sandboxes_by_fds(fd_soft_limit(), open_fd_count())),
      create_pool_(std::make_unique<asio::thread_pool>(options_.creation_threads)),
      destroy_pool_(std::make_unique<asio::thread_pool>(1)) {}

Worker::~Worker() {
  create_pool_->join();
  destroy_pool_->join();
}

void Worker::drain() {
  // Posts a marker and waits for it: everything queued before it has run.
  std::promise<void> done;
  asio::post(*destroy_pool_, [&] { done.set_value(); });
  done.get_future().wait();
}

void Worker::create(registry::FunctionVersionPtr function,
                    std::function<void(const std::shared_ptr<Environment>&)> on_dead, Created done,
                    StartKind kind) {
  if (!reserve_slot()) return done(TooManyRequests(kNoFdsMessage));
  if (!reserve_memory(function->memory_mb)) {
    slots_--;
    return done(TooManyRequests("Rate Exceeded. The host has no memory left for a new execution environment of " +
                                std::to_string(function->memory_mb) + " MB."));
  }
  live_++;
  asio::post(*create_pool_, [this, f = std::move(function), on_dead = std::move(on_dead), done = std::move(done),
                             kind]() mutable {
    // Exception boundary: a failure to create one sandbox fails that create only.
    StatusOr<std::shared_ptr<Environment>> env = ServiceError("The execution environment could not be created.");
    try {
      env = create_now(f, std::move(on_dead), kind);
    } catch (const std::exception& e) {
      log::error(std::string("worker: creating an execution environment threw: ") + e.what());
    }
    if (!env.ok()) {
      live_--;
      slots_--;
      reserved_mb_ -= f->memory_mb;
    }
    try {
      done(std::move(env));
    } catch (const std::exception& e) {
      log::error(std::string("worker: a create callback threw: ") + e.what());
    }
  });
}

bool Worker::memory_fits(uint64_t memory_mb) const {
  const uint64_t limit = options_.sandbox_memory_mb;
  return limit == 0 || reserved_mb_.load() + memory_mb <= limit;
}

bool Worker::reserve_slot() {
  uint64_t cur = slots_.load();
  do {
    if (cur >= max_by_fds_) return false;
  } while (!slots_.compare_exchange_weak(cur, cur + 1));
  return true;
}

bool Worker::reserve_memory(uint64_t memory_mb) {
  const uint64_t limit = options_.sandbox_memory_mb;
  uint64_t cur = reserved_mb_.load();
  do {
    if (limit != 0 && cur + memory_mb > limit) return false;
  } while (!reserved_mb_.compare_exchange_weak(cur, cur + memory_mb));
  return true;
}

namespace {

std::string stream_name(const std::string& version, const std::string& id) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char day[16];
  std::strftime(day, sizeof day, "%Y/%m/%d", &tm);
  return std::string(day) + "/[" + version + "]" + id;
}

// Lambda's provided runtimes start /var/task/bootstrap, or else /opt/bootstrap from a
// layer (later layers win, as in the merged /opt).
std::string bootstrap_for(const registry::FunctionVersion& f, const registry::RuntimeInfo& runtime) {
  std::string bootstrap = runtime.bootstrap;
  if (bootstrap != "/var/task/bootstrap") return bootstrap;
  std::error_code ec;
  if (std::filesystem::exists(f.code_dir / "bootstrap", ec)) return bootstrap;
  for (auto it = f.layers.rbegin(); it != f.layers.rend(); ++it) {
    if (std::filesystem::exists(it->dir / "bootstrap", ec)) return "/opt/bootstrap";
  }
  return bootstrap;
}

}  // namespace

std::vector<std::string> Worker::environment_for(const registry::FunctionVersion& f, const std::string& stream,
                                                 bool snap_start) const {
  std::vector<std::string> env;
  for (const auto& [k, v] : f.environment) env.push_back(k + "=" + v);
  const bool managed = f.runtime.rfind("provided", 0) != 0;
  env.push_back("AWS_LAMBDA_FUNCTION_NAME=" + f.name);
  env.push_back("AWS_LAMBDA_FUNCTION_VERSION=" + f.version);
  env.push_back("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + std::to_string(f.memory_mb));
  env.push_back("AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001");
  env.push_back("AWS_LAMBDA_LOG_GROUP_NAME=" + f.log_group());
  env.push_back("AWS_LAMBDA_LOG_STREAM_NAME=" + stream);
  env.push_back(snap_start ? "AWS_LAMBDA_INITIALIZATION_TYPE=snap-start" : "AWS_LAMBDA_INITIALIZATION_TYPE=on-demand");
  if (f.log_format == "JSON") {  // as Lambda: set only for the JSON log format
    env.push_back("AWS_LAMBDA_LOG_FORMAT=JSON");
    env.push_back("AWS_LAMBDA_LOG_LEVEL=" + f.application_log_level);
  }
  env.push_back("LAMBDA_TASK_ROOT=/var/task");
  env.push_back("LAMBDA_RUNTIME_DIR=/var/runtime");
  env.push_back("_HANDLER=" + f.handler);
  env.push_back("AWS_REGION=" + f.region);
  env.push_back("AWS_DEFAULT_REGION=" + f.region);
  if (managed) env.push_back("AWS_EXECUTION_ENV=AWS_Lambda_" + f.runtime);
  env.push_back("TZ=:UTC");
  env.push_back("LANG=en_US.UTF-8");
  env.push_back("PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin");
  env.push_back("LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib");
  return env;
}

StatusOr<std::shared_ptr<Environment>> Worker::create_now(
    const registry::FunctionVersionPtr& f, std::function<void(const std::shared_ptr<Environment>&)> on_dead,
    StartKind kind) {
  const auto begun = std::chrono::steady_clock::now();
  const registry::RuntimeInfo* runtime = registry::find_runtime(f->runtime);
  if (!runtime) return ServiceError("runtime " + f->runtime + " is not installed");
  std::string id = crypto::hex(crypto::random_bytes(16));
  std::string stream = stream_name(f->version, id);

  int pipe_fds[2];
  // SAFETY: creates the pipe that carries the runtime's stdout and stderr; both ends
  // are owned below (read end by the environment, write end closed after create()).
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return ServiceError("cannot create a pipe for sandbox output");

  sandbox::SandboxSpec spec;
  spec.id = id;
  spec.tenant = f->account_id + ":" + f->name;
  spec.code_dir = f->code_dir;
  spec.runtime_dir = options_.runtimes_dir / runtime->runtime_dir_name;
  for (const auto& layer : f->layers) spec.layer_dirs.push_back(layer.dir);
  spec.argv = {bootstrap_for(*f, *runtime)};
  const bool snap_start = f->snap_start && f->version != "$LATEST";
  spec.env = environment_for(*f, stream, snap_start || kind == StartKind::kForSnapshot);
  spec.memory_mb = f->memory_mb;
  spec.ephemeral_mb = f->ephemeral_mb;
  spec.output_fd = pipe_fds[1];
  StatusOr<std::unique_ptr<sandbox::Sandbox>> sb = ServiceError("no sandbox");
  bool restored = false;
  if (kind == StartKind::kOnDemand && snap_start && snapshots_) {
    if (auto found = snapshots_->find(*f)) {
      sb = restore_sandbox(backend_, spec, found->dir, found->meta.replay);
      restored = sb.ok();
      if (!sb.ok()) log::warn("snapshot of " + f->arn() + ":" + f->version + " not restored, starting cold: " + sb.status().message());
    } else {
      log::warn("no snapshot of " + f->arn() + ":" + f->version + ": starting cold");
    }
  }
  if (!restored) sb = backend_.create(spec);
  ::close(pipe_fds[1]);
  if (!sb.ok()) {
    ::close(pipe_fds[0]);
    return sb.status();
  }
  Environment::Hooks hooks;
  hooks.destroy = [this, id, memory_mb = f->memory_mb](std::unique_ptr<sandbox::Sandbox> s) {
    {
      std::lock_guard lock(envs_mu_);
      envs_.erase(id);
    }
    reserved_mb_ -= memory_mb;
    slots_--;
    std::shared_ptr<sandbox::Sandbox> owned(std::move(s));
    asio::post(*destroy_pool_, [this, owned] {
      owned->destroy();
      live_--;
    });
  };
  hooks.on_dead = std::move(on_dead);
  auto env = std::make_shared<Environment>(io_, f, std::move(sb).value(), pipe_fds[0],
                                           logs_.open_stream(f->account_id, f->name, stream), std::move(hooks));
  if (restored) {
    // What differs per copy reaches the restored runtime with its /restore/next answer.
    env->set_start_kind(StartKind::kRestored, begun,
                        {{"Kiln-Log-Stream-Name", stream}});
  } else if (kind == StartKind::kForSnapshot) {
    env->set_start_kind(StartKind::kForSnapshot);
  }
  {
    std::lock_guard lock(envs_mu_);
    envs_[id] = env;
  }
  env->start();
  return env;
}

std::vector<SandboxInfo> Worker::sandboxes() const {
  std::vector<std::shared_ptr<Environment>> live;
  {
    std::lock_guard lock(envs_mu_);
    for (const auto& [id, weak] : envs_) {
      if (auto env = weak.lock()) live.push_back(std::move(env));
    }
  }
  std::vector<SandboxInfo> out;
  auto now = std::chrono::steady_clock::now();
  for (const auto& env : live) {
    const auto& f = *env->function();
    out.push_back({env->id(), f.account_id, f.name, f.version, env->busy(),
                   std::chrono::duration<double>(now - env->created()).count(), f.memory_mb,
                   (env->max_memory_bytes() + (1 << 20) - 1) >> 20});
  }
  return out;
}

}  // namespace kiln::worker
