#include "cli/server.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/field.hpp>

#include <cstdio>
#include <fstream>
#include <thread>

#include "api/admin.h"
#include "api/concurrency_operations.h"
#include "api/provisioned_operations.h"
#include "api/layer_operations.h"
#include "registry/layers.h"
#include "api/frontend.h"
#include "api/key_ring.h"
#include "api/responses.h"
#include "assignment/assignment.h"
#include "async/async_service.h"
#include "cli/admin_actions.h"
#include "common/crypto.h"
#include "common/log.h"
#include "logs/logs_service.h"
#include "metrics/metrics.h"
#include "placement/placement.h"
#include "registry/code_store.h"
#include "registry/registry.h"
#include "registry/store.h"
#include "sandbox/sandbox.h"
#include "worker/preparer.h"
#include "worker/snapshotter.h"
#include "worker/provisioner.h"
#include "worker/worker.h"

namespace kiln::cli {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr uint64_t kMaxRequestBody = 70167211;  // Lambda's limit for a direct zip upload request

std::string get_or_create_meta(registry::Store& store, const std::string& key, const std::function<std::string()>& make) {
  if (auto v = store.get_meta(key)) return *v;
  std::string v = make();
  if (Status s = store.put_meta(key, v); !s.ok()) {
    log::error(s.message());
    std::exit(1);
  }
  return v;
}

// The root account's key: from the environment, or generated once and kept in the store.
registry::AccessKey root_key(registry::Store& store, const std::string& account) {
  const char* id = std::getenv("KILN_ACCESS_KEY_ID");
  const char* secret = std::getenv("KILN_SECRET_ACCESS_KEY");
  if (id && secret && *id && *secret) return {id, secret, account};
  return {get_or_create_meta(store, "root_access_key_id",
                             [] { return "AKIA" + crypto::random_string(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"); }),
          get_or_create_meta(store, "root_secret_access_key",
                             [] {
                               return crypto::random_string(
                                   40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
                             }),
          account};
}

void write_credentials_file(const std::filesystem::path& file, const registry::AccessKey& key, const std::string& region) {
  std::filesystem::path tmp = file;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "[kiln]\naws_access_key_id = " << key.access_key_id << "\naws_secret_access_key = "
        << key.secret_access_key << "\nregion = " << region << "\n";
  }
  ::chmod(tmp.c_str(), 0600);
  std::filesystem::rename(tmp, file);
}

bool split_host_port(const std::string& listen, std::string* host, uint16_t* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  *host = listen.substr(0, colon);
  std::string p = listen.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return false;
  unsigned long v = std::stoul(p);
  if (v > 65535) return false;
  *port = static_cast<uint16_t>(v);
  if (host->size() > 1 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  return true;
}

std::filesystem::path default_runtimes_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto beside = exe.parent_path().parent_path() / "runtimes";
    if (std::filesystem::exists(beside / "python3.11")) return beside;
  }
  return KILN_RUNTIMES_DIR;
}

// Raises the soft RLIMIT_NOFILE to the hard limit: every sandbox costs Kiln about a
// dozen fds, and a service manager's default soft limit (1,024) would cap the host at
// ~80 sandboxes. Sandboxes set their own limit (JailOptions::max_open_files).
void raise_open_files_limit() {
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur >= files.rlim_max) return;
  const rlim_t was = files.rlim_cur;
  files.rlim_cur = files.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &files) != 0) {
    log::warn("cannot raise the open files limit from " + std::to_string(was));
    return;
  }
  log::info("open files limit raised from " + std::to_string(was) + " to " + std::to_string(files.rlim_cur));
}

}  // namespace

int serve(const ServeOptions& o) {
  raise_open_files_limit();
  std::string host;
  uint16_t port = 0;
  if (!split_host_port(o.listen, &host, &port)) {
    std::fprintf(stderr, "kiln: --listen wants HOST:PORT, got %s\n", o.listen.c_str());
    return 2;
  }
  std::error_code ec;
  std::filesystem::create_directories(o.data_dir, ec);
  ::chmod(o.data_dir.c_str(), 0700);
  auto store_or = registry::Store::open(o.data_dir / "kiln.db");
  if (!store_or.ok()) {
    std::fprintf(stderr, "kiln: %s\n", store_or.status().message().c_str());
    return 1;
  }
  auto store = std::move(store_or).value();
  registry::CodeStore code(o.data_dir / "code");
  worker::LogStore logs(o.data_dir / "logs");

  const std::string account = get_or_create_meta(*store, "account_id", [] {
    std::string digits = crypto::random_string(12, "0123456789");
    if (digits[0] == '0') digits[0] = '1';
    return digits;
  });
  const std::string url_secret = get_or_create_meta(*store, "url_secret", [] { return crypto::hex(crypto::random_bytes(32)); });
  registry::AccessKey root = root_key(*store, account);
  store->put_access_key(root);
  write_credentials_file(o.data_dir / "credentials", root, o.region);

  api::KeyRing keys;
  for (const auto& k : store->access_keys()) keys.add({k.access_key_id, k.secret_access_key, k.account_id});

  // Layers outlive the registry and the frontend that use them.
  auto layers_or = registry::LayerStore::open(o.data_dir / "kiln.db", code, o.region);
  if (!layers_or.ok()) {
    std::fprintf(stderr, "kiln: %s\n", layers_or.status().message().c_str());
    return 1;
  }
  auto layers = std::move(layers_or).value();
  registry::Registry registry(*store, code, o.region);
  registry.set_layer_resolver(
      [&l = *layers](const std::string& account, const std::string& arn) { return l.resolve(account, arn); });
  if (Status s = registry.load(); !s.ok()) {
    std::fprintf(stderr, "kiln: %s\n", s.message().c_str());
    return 1;
  }

  std::unique_ptr<sandbox::SandboxBackend> backend;
  if (o.sandbox_backend == "process") {
    backend = sandbox::make_process_backend();
  } else if (o.sandbox_backend == "jail") {
    sandbox::JailOptions jopts;
    jopts.state_dir = o.data_dir / "sandboxes";
    jopts.pids_max = o.sandbox_pids_max;
    // A sandbox cannot raise its limit above Kiln's hard one (it has no CAP_SYS_RESOURCE
    // on the host), e.g. when Kiln runs under a small systemd LimitNOFILE.
    if (rlimit rl{}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY) {
      jopts.max_open_files = std::min<uint64_t>(jopts.max_open_files, rl.rlim_max);
    }
    jopts.restore_stub = KILN_RESTORE_STUB;  // built beside kiln (target kiln-restore)
    backend = sandbox::make_jail_backend(jopts);
  } else {
    std::fprintf(stderr, "kiln: unknown sandbox backend %s\n", o.sandbox_backend.c_str());
    return 2;
  }

  asio::io_context io;
  worker::WorkerOptions wopts;
  wopts.runtimes_dir = o.runtimes_dir.empty() ? default_runtimes_dir() : o.runtimes_dir;
  wopts.region = o.region;
  // Host memory for sandboxes: by default three quarters of the machine's RAM.
  wopts.sandbox_memory_mb = o.sandbox_memory_mb;
  if (wopts.sandbox_memory_mb == 0) {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) wopts.sandbox_memory_mb = static_cast<uint64_t>(pages) / 1024 * page / 1024 * 3 / 4;
  }
  wopts.scale_rate = o.scale_rate;
  // Initializations ahead of traffic (creates, updates): one per core at a time, the rest
  // wait in order; no room for a minute means "prepared without a sandbox" (preparer.h).
  // Declared before the worker: the worker's threads may end an initialization until
  // the worker is destroyed.
  worker::InitQueue init_queue(std::max(1u, std::thread::hardware_concurrency()), std::chrono::seconds(60));
  // Snapshots of SnapStart versions (worker/snapshot_store.h); before the worker, whose
  // threads restore from it until it is destroyed.
  worker::SnapshotStore snapshots(o.data_dir / "snapshots");
  if (Status s = snapshots.open(); !s.ok()) {
    std::fprintf(stderr, "kiln: %s\n", s.message().c_str());
    return 1;
  }
  worker::Worker worker(io, *backend, logs, wopts);
  asio::thread_pool snapshot_pool(1);  // checkpoints (blocking, ~tens of ms each)
  log::info("descriptors: RLIMIT_NOFILE " + std::to_string(worker::fd_soft_limit()) + " fits " +
            std::to_string(worker.max_sandboxes_by_fds()) + " sandboxes");
  placement::PlacementService placement({&worker});
  assignment::AssignmentService assignment;
  registry.on_retired([&](const registry::FunctionVersionPtr& old) { assignment.retire_key(old->sandbox_key()); });
  registry.set_preparer(worker::make_preparer(placement, assignment, init_queue));
  // SnapStart (issue 11): published versions are snapshotted once and restored after.
  // Only the jail can restore (a fresh pid namespace per copy); with the process
  // backend, versions become Active at once and start cold (as snap-start).
  if (o.sandbox_backend == "jail") {
    worker.set_snapshots(&snapshots);
    registry.set_snapshotter(worker::make_snapshotter(placement, assignment, init_queue, snapshots, snapshot_pool));
  }
  registry.on_version_deleted([&snapshots](const registry::FunctionVersionPtr& v) { snapshots.remove(*v); });
  // Provisioned concurrency: sandboxes kept initialized per version or alias
  // (worker/provisioner, api/provisioned_operations); reconciled by the reaper timer.
  auto provisioner = std::make_shared<worker::Provisioner>(
      assignment, worker::make_sandbox_factory(placement),
      [&registry](const std::string& a, const std::string& f, const std::string& q) {
        return registry.configuration(a, f, q);
      });
  registry.on_retired([&assignment, &registry, &store, provisioner](const registry::FunctionVersionPtr& old) {
    assignment.retire_key(old->sandbox_key());
    // A deleted function takes its provisioned concurrency configurations with it.
    if (registry.configuration(old->account_id, old->name, "").ok()) return;
    for (const auto& [qualifier, status] : provisioner->list(old->account_id, old->name)) {
      provisioner->remove(old->account_id, old->name, qualifier);
    }
    if (Status s = store->delete_provisioned(old->account_id, old->name, ""); !s.ok()) log::warn(s.message());
  });

  // Concurrency limits (src/concurrency): declared before the frontend, which borrows them.
  concurrency::Limiter limiter(o.concurrency_limit);
  concurrency::Reservations reservations(*store, limiter);
  if (Status s = reservations.load(); !s.ok()) {
    std::fprintf(stderr, "kiln: %s\n", s.message().c_str());
    return 1;
  }

  api::Frontend frontend(io, api::FrontendDeps{registry, code, assignment, placement, keys, o.region, url_secret,
                                               o.concurrency_limit});

  api::AdminApi admin;
  api::register_layer_operations(frontend, *layers);
  api::register_concurrency_operations(frontend, reservations);
  api::register_provisioned_operations(frontend, *store, *provisioner);
  frontend.set_concurrency_limiter(&limiter);

  // Components that extend the API register here, each in its own block, before
  // admin.attach() and before serving. (Async invocations; logs, metrics, admin actions.)

  // Asynchronous invocations: the durable event queue, its poller, retries,
  // destinations and dead letters (src/async). Attempts run on the event loop.
  async::AsyncOptions async_options;
  async_options.store_file = o.data_dir / "async" / "events.db";
  async_options.region = o.region;
  async_options.retry_base_ms = o.async_retry_base_ms;
  auto async_service = async::AsyncService::open(
      async_options,
      [&io, &frontend](const std::string& account, const std::string& function_arn, const std::string& qualifier,
                       std::string payload, std::string request_id, async::InvokeDone done) {
        asio::post(io, [&frontend, account, function_arn, qualifier, payload = std::move(payload),
                        request_id = std::move(request_id), done = std::move(done)]() mutable {
          // Boundary: an attempt that throws fails as a platform error (retried).
          try {
            frontend.invoke_function(account, function_arn, qualifier, std::move(payload), std::move(request_id),
                                     done);
          } catch (const std::exception& e) {
            log::error(std::string("async: an attempt threw: ") + e.what());
            worker::InvokeResult r;
            r.status = ServiceError("Kiln failed to run the attempt.");
            done(std::move(r), "");
          }
        });
      },
      async::system_clock());
  if (!async_service.ok()) {
    std::fprintf(stderr, "kiln: %s\n", async_service.status().message().c_str());
    return 1;
  }
  // The poller keeps within each function's concurrency: its reservation, or else the
  // account's unreserved pool.
  (*async_service)->set_function_concurrency([&limiter](const std::string& account, const std::string& name) {
    return std::optional<uint64_t>(limiter.reserved(account, name).value_or(limiter.unreserved_limit(account)));
  });
  frontend.set_async_sink(async_service->get());
  (*async_service)->register_with(frontend, admin);
  (*async_service)->start();

  // Logs API, /metrics and the operator's admin actions (src/logs, src/metrics,
  // cli/admin_actions). Log cap per function: --log-max-bytes-per-function (or the
  // KILN_LOG_MAX_BYTES_PER_FUNCTION environment variable).
  uint64_t log_cap = o.log_max_bytes_per_function;
  if (const char* cap = std::getenv("KILN_LOG_MAX_BYTES_PER_FUNCTION"); !log_cap && cap && *cap) {
    log_cap = std::strtoull(cap, nullptr, 10);
  }
  if (log_cap) {
    worker::LogLimits limits;
    limits.max_bytes_per_function = std::max<uint64_t>(log_cap, 64 * 1024);
    limits.segment_bytes = std::min<uint64_t>(limits.segment_bytes, limits.max_bytes_per_function / 8);
    logs.set_limits(limits);
  }
  logs::LogsService logs_api(logs, o.region);
  logs_api.attach(frontend);
  metrics::Metrics metrics;
  cli::register_host_metrics(metrics, assignment, worker);
  {
    // The async queue, read from its store at scrape time.
    auto* queue = async_service->get();
    auto stats = [queue] { return queue->store().queue_stats(); };
    metrics.add_gauge("kiln_async_queue_depth", "Asynchronous events accepted and not yet finished.", [stats] {
      auto q = stats();
      return q.ok() ? static_cast<double>(q->depth) : 0.0;
    });
    metrics.add_gauge("kiln_async_oldest_event_age_seconds", "Age of the oldest unfinished asynchronous event.", [stats] {
      auto q = stats();
      if (!q.ok() || q->oldest_received_ms == 0) return 0.0;
      return static_cast<double>(worker::epoch_ms_now() - q->oldest_received_ms) / 1000.0;
    });
    metrics.add_gauge("kiln_dead_letters", "Asynchronous events that failed for good and wait in the dead-letter store.",
                      [stats] {
                        auto q = stats();
                        return q.ok() ? static_cast<double>(q->dead_letters) : 0.0;
                      });
  }
  metrics.attach(frontend);
  frontend.set_invoke_observer(&metrics);
  cli::register_admin_actions(admin, {*store, keys, assignment, worker, metrics, wopts.max_sandboxes});
  asio::steady_timer log_retention(io);  // sweeps expired log segments every 10 minutes
  std::function<void()> sweep_logs = [&] {
    frontend.post_control([&logs] { logs.enforce_retention(worker::epoch_ms_now()); });
    log_retention.expires_after(std::chrono::minutes(10));
    log_retention.async_wait([&](boost::system::error_code e) {
      if (!e) sweep_logs();
    });
  };
  sweep_logs();

  admin.attach(frontend, account);
  registry.resume_preparations();  // updates a crash interrupted
  api::load_provisioned_configs(*store, *provisioner);

  tcp::acceptor acceptor(io);
  boost::system::error_code bec;
  tcp::endpoint endpoint(asio::ip::make_address(host, bec), port);
  if (bec) {
    std::fprintf(stderr, "kiln: bad listen address %s\n", host.c_str());
    return 2;
  }
  acceptor.open(endpoint.protocol(), bec);
  acceptor.set_option(tcp::acceptor::reuse_address(true), bec);
  acceptor.bind(endpoint, bec);
  if (!bec) acceptor.listen(asio::socket_base::max_listen_connections, bec);
  if (bec) {
    std::fprintf(stderr, "kiln: cannot listen on %s: %s\n", o.listen.c_str(), bec.message().c_str());
    return 1;
  }
  net::ServerOptions sopts;
  sopts.body_limit = kMaxRequestBody;
  // SDK clients keep idle connections pooled and reconnect when one is closed; a
  // request (up to a 70 MB zip) must arrive within read_timeout of its first byte.
  // Connections are bounded by the descriptors kept out of sandbox capacity.
  sopts.idle_timeout = std::chrono::seconds(60);
  sopts.read_timeout = std::chrono::seconds(300);
  sopts.max_connections = worker::fd_headroom(worker::fd_soft_limit()) - 16;
  sopts.too_large = [] {
    return api::error_response({413, "RequestEntityTooLargeException",
                                "Request must be smaller than " + std::to_string(kMaxRequestBody) + " bytes"},
                               registry::new_uuid());
  };
  auto server = std::make_shared<net::HttpServer>(
      io, std::move(acceptor),
      [&frontend](net::Request&& r, net::ResponderPtr responder) { frontend.handle(std::move(r), std::move(responder)); },
      sopts);
  server->start();

  asio::steady_timer reaper(io);
  std::function<void()> reap = [&] {
    reaper.expires_after(std::chrono::seconds(1));
    reaper.async_wait([&](boost::system::error_code e) {
      if (e) return;
      assignment.reap_idle(std::chrono::seconds(o.sandbox_idle_seconds));
      provisioner->reconcile();
      init_queue.room_changed();  // busy sandboxes may have gone idle: a waiting initialization retries
      reap();
    });
  };
  reap();

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code, int) {
    log::info("stopping");
    server->stop();
    reaper.cancel();
    provisioner->stop();
    assignment.retire_all();
    io.stop();
  });

  std::printf("Kiln is serving the Lambda API at http://%s:%u (region %s, account %s)\n"
              "  data directory: %s (sandbox backend: %s)\n"
              "  credentials:    %s (profile kiln)\n"
              "Try it:\n"
              "  AWS_SHARED_CREDENTIALS_FILE=%s AWS_PROFILE=kiln aws lambda list-functions --endpoint-url http://%s:%u\n",
              host.c_str(), server->port(), o.region.c_str(), account.c_str(), o.data_dir.c_str(),
              backend->name(), (o.data_dir / "credentials").c_str(), (o.data_dir / "credentials").c_str(),
              host.c_str(), server->port());
  std::fflush(stdout);

  // Half the cores by default: the runtimes need the rest, and handing an invoke across
  // event-loop threads costs more than it gains on small hosts (docs/benchmarks.md).
  unsigned threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency() / 2);
  std::vector<std::thread> pool;
  // Last exception boundary of the event loop: a handler that throws (a timer, a pipe
  // watch) is logged and the loop goes on; requests have their own boundary that
  // answers them (net::HttpServer, Frontend).
  const auto run = [&io] {
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {
        log::error(std::string("event loop: a handler threw: ") + e.what());
      } catch (...) {
        log::error("event loop: a handler threw");
      }
    }
  };
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back(run);
  run();
  for (auto& t : pool) t.join();
  frontend.shutdown();
  assignment.retire_all();
  worker.drain();
  return 0;
}

}  // namespace kiln::cli
