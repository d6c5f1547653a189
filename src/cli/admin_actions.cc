#include "cli/admin_actions.h"

#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/crypto.h"

namespace kiln::cli {

using nlohmann::json;

namespace {

Status invalid(const std::string& m) { return InvalidParameterValue(m); }

StatusOr<std::string> optional_string(const json& args, const char* field) {
  auto it = args.find(field);
  if (it == args.end() || it->is_null()) return std::string();
  if (!it->is_string()) return invalid(std::string(field) + " must be a string");
  return it->get<std::string>();
}

bool is_account_id(const std::string& s) {
  return s.size() == 12 && s.find_first_not_of("0123456789") == std::string::npos;
}

double host_memory_used_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  uint64_t value = 0, total = 0, available = 0;
  while (in >> key >> value) {
    std::getline(in, unit);
    if (key == "MemTotal:") total = value;
    if (key == "MemAvailable:") available = value;
  }
  return total > available ? static_cast<double>(total - available) * 1024 : 0;
}

json status(const AdminDeps& d) {
  auto sandboxes = d.worker.sandboxes();
  auto stats = d.assignment.stats();
  std::map<std::tuple<std::string, std::string, std::string>, std::pair<int, int>> per;
  for (const auto& s : sandboxes) {
    auto& slot = per[{s.account, s.function, s.version}];
    (s.busy ? slot.second : slot.first)++;
  }
  json functions = json::array();
  for (const auto& [k, v] : per) {
    functions.push_back({{"AccountId", std::get<0>(k)}, {"FunctionName", std::get<1>(k)},
                         {"Version", std::get<2>(k)}, {"Idle", v.first}, {"Busy", v.second}});
  }
  json gauges = json::object();
  for (const auto& g : d.metrics.read_gauges()) {
    std::string name = g.name;
    for (const auto& [k, v] : g.labels) name += "{" + k + "=" + v + "}";
    gauges[name] = g.value;
  }
  return {{"Host",
           {{"Sandboxes", d.worker.load()},
            {"MaxSandboxes", d.max_sandboxes},
            {"Idle", stats.idle},
            {"Busy", stats.busy},
            {"MemoryReservedMB", d.worker.reserved_memory_mb()},
            {"HostMemoryUsedMB", static_cast<uint64_t>(host_memory_used_bytes()) >> 20}}},
          {"Functions", functions},
          {"Gauges", gauges}};
}

}  // namespace

void register_host_metrics(metrics::Metrics& m, assignment::AssignmentService& assignment, worker::Worker& worker) {
  m.add_gauge_family("kiln_sandboxes", "Sandboxes known to the assignment service, by state.", [&assignment] {
    auto s = assignment.stats();
    return std::vector<std::pair<metrics::Labels, double>>{
        {{{"state", "idle"}}, static_cast<double>(s.idle)}, {{{"state", "busy"}}, static_cast<double>(s.busy)}};
  });
  m.add_gauge("kiln_worker_sandboxes", "Live sandboxes on this worker (starting ones included).",
              [&worker] { return static_cast<double>(worker.load()); });
  m.add_gauge("kiln_memory_reserved_bytes", "Sum of MemorySize over live sandboxes.",
              [&worker] { return static_cast<double>(worker.reserved_memory_mb()) * 1048576.0; });
  m.add_gauge("kiln_host_memory_used_bytes", "Host memory in use (MemTotal - MemAvailable).", host_memory_used_bytes);
}

void register_admin_actions(api::AdminApi& admin, AdminDeps d) {
  admin.add_action("Status", [d](const json&, const api::Principal&) -> StatusOr<json> { return status(d); });

  admin.add_action("ListSandboxes", [d](const json& args, const api::Principal&) -> StatusOr<json> {
    auto filter = optional_string(args, "FunctionName");
    if (!filter.ok()) return filter.status();
    json out = json::array();
    for (const auto& s : d.worker.sandboxes()) {
      if (!filter->empty() && s.function != *filter) continue;
      out.push_back({{"Id", s.id},
                     {"AccountId", s.account},
                     {"FunctionName", s.function},
                     {"Version", s.version},
                     {"State", s.busy ? "busy" : "idle"},
                     {"AgeSeconds", static_cast<int64_t>(s.age_s)},
                     {"MemorySizeMB", s.memory_mb},
                     {"MaxMemoryUsedMB", s.max_memory_mb}});
    }
    return json{{"Sandboxes", out}};
  });

  admin.add_action("ListAccessKeys", [d](const json& args, const api::Principal&) -> StatusOr<json> {
    auto account = optional_string(args, "AccountId");
    if (!account.ok()) return account.status();
    json out = json::array();
    for (const auto& k : d.store.access_keys()) {
      if (account->empty() || k.account_id == *account) {
        out.push_back({{"AccessKeyId", k.access_key_id}, {"AccountId", k.account_id}});
      }
    }
    return json{{"AccessKeys", out}};
  });

  admin.add_action("CreateAccessKey", [d](const json& args, const api::Principal&) -> StatusOr<json> {
    auto account = optional_string(args, "AccountId");
    if (!account.ok()) return account.status();
    auto existing = d.store.access_keys();
    if (!account->empty()) {
      if (!is_account_id(*account)) return invalid("AccountId must be 12 digits");
      bool known = false;
      for (const auto& k : existing) known = known || k.account_id == *account;
      if (!known) return ResourceNotFound("No account " + *account + " (omit AccountId to create one)");
    } else {
      for (;;) {  // a new account id no key uses yet
        std::string id = crypto::random_string(12, "0123456789");
        if (id[0] == '0') continue;
        bool taken = false;
        for (const auto& k : existing) taken = taken || k.account_id == id;
        if (!taken) {
          *account = id;
          break;
        }
      }
    }
    registry::AccessKey key{"AKIA" + crypto::random_string(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
                            crypto::random_string(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
                            *account};
    if (Status s = d.store.put_access_key(key); !s.ok()) return s;
    d.keys.add({key.access_key_id, key.secret_access_key, key.account_id});
    return json{{"AccessKeyId", key.access_key_id}, {"SecretAccessKey", key.secret_access_key},
                {"AccountId", key.account_id}};
  });

  admin.add_action("RevokeAccessKey", [d](const json& args, const api::Principal& caller) -> StatusOr<json> {
    auto id = optional_string(args, "AccessKeyId");
    if (!id.ok()) return id.status();
    if (id->empty()) return invalid("AccessKeyId is required");
    if (*id == caller.access_key_id) return invalid("Refusing to revoke the key that signs this request");
    auto deleted = d.store.delete_access_key(*id);
    if (!deleted.ok()) return deleted.status();
    if (!*deleted) return ResourceNotFound("No access key " + *id);
    d.keys.remove(*id);
    return json::object();
  });
}

}  // namespace kiln::cli
