// The operator's subcommands: kiln status | sandboxes | dead-letters | credentials.
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cli/admin_client.h"
#include "common/json_text.h"

namespace kiln::cli {

using nlohmann::json;

namespace {

constexpr const char* kUsage =
    "usage: kiln status [--json]\n"
    "       kiln sandboxes [--function NAME] [--json]\n"
    "       kiln dead-letters [list] [--function NAME] [--max N] [--json]\n"
    "       kiln dead-letters replay ID [--json]\n"
    "       kiln credentials list [--account ID] [--json]\n"
    "       kiln credentials create [--account ID] [--json]   (no --account: a new account)\n"
    "       kiln credentials revoke ACCESS_KEY_ID [--json]\n"
    "common: --endpoint-url http://HOST:PORT (default http://127.0.0.1:9001)\n"
    "        --data-dir DIR (credentials file DIR/credentials; default ./.kiln)\n"
    "        --region REGION; env KILN_ACCESS_KEY_ID/KILN_SECRET_ACCESS_KEY override the file\n";

std::string text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  return json_text::dump(v);
}

// Prints rows as aligned columns under a header.
void print_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (size_t i = 0; i < header.size(); ++i) {
      std::string cell = i < r.size() ? r[i] : "";
      out += cell;
      if (i + 1 < header.size()) out += std::string(width[i] - cell.size() + 2, ' ');
    }
    std::printf("%s\n", out.c_str());
  };
  line(header);
  for (const auto& r : rows) line(r);
}

std::vector<std::vector<std::string>> rows_of(const json& items, const std::vector<std::string>& fields) {
  std::vector<std::vector<std::string>> rows;
  if (!items.is_array()) return rows;
  for (const auto& it : items) {
    std::vector<std::string> r;
    for (const auto& f : fields) r.push_back(it.contains(f) ? text(it[f]) : "-");
    rows.push_back(std::move(r));
  }
  return rows;
}

struct Options {
  std::string endpoint = "http://127.0.0.1:9001";
  std::string data_dir = ".kiln";
  std::string region;
  bool json_out = false;
  std::map<std::string, std::string> flags;  // --function, --max, --account
  std::vector<std::string> positional;
};

bool parse(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json") {
      o->json_out = true;
    } else if (a.rfind("--", 0) == 0) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "kiln: %s needs a value\n", a.c_str());
        return false;
      }
      std::string v = argv[++i];
      if (a == "--endpoint-url") o->endpoint = v;
      else if (a == "--data-dir") o->data_dir = v;
      else if (a == "--region") o->region = v;
      else if (a == "--function" || a == "--max" || a == "--account") o->flags[a] = v;
      else {
        std::fprintf(stderr, "kiln: unknown option %s\n%s", a.c_str(), kUsage);
        return false;
      }
    } else {
      o->positional.push_back(a);
    }
  }
  return true;
}

int fail(const Status& s) {
  std::fprintf(stderr, "kiln: %s: %s\n", s.type().c_str(), s.message().c_str());
  return 1;
}

}  // namespace

int run_admin_command(int argc, char** argv) {
  std::string command = argv[0];
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
  }
  Options o;
  if (!parse(argc, argv, &o)) return 2;
  std::string sub = o.positional.empty() ? "" : o.positional[0];
  std::string action;
  json args = json::object();
  if (command == "status" && o.positional.empty()) {
    action = "Status";
  } else if (command == "sandboxes" && o.positional.empty()) {
    action = "ListSandboxes";
    if (o.flags.count("--function")) args["FunctionName"] = o.flags["--function"];
  } else if (command == "dead-letters" && (sub.empty() || sub == "list") && o.positional.size() <= 1) {
    action = "ListDeadLetters";
    if (o.flags.count("--function")) args["FunctionName"] = o.flags["--function"];
    if (o.flags.count("--max")) {
      const std::string& m = o.flags["--max"];
      if (m.empty() || m.size() > 9 || m.find_first_not_of("0123456789") != std::string::npos) {
        std::fprintf(stderr, "kiln: --max wants a number\n");
        return 2;
      }
      args["MaxItems"] = std::stoi(m);
    }
  } else if (command == "dead-letters" && sub == "replay" && o.positional.size() == 2) {
    action = "ReplayDeadLetter";
    args["Id"] = o.positional[1];
  } else if (command == "credentials" && sub == "list" && o.positional.size() == 1) {
    action = "ListAccessKeys";
    if (o.flags.count("--account")) args["AccountId"] = o.flags["--account"];
  } else if (command == "credentials" && sub == "create" && o.positional.size() == 1) {
    action = "CreateAccessKey";
    if (o.flags.count("--account")) args["AccountId"] = o.flags["--account"];
  } else if (command == "credentials" && sub == "revoke" && o.positional.size() == 2) {
    action = "RevokeAccessKey";
    args["AccessKeyId"] = o.positional[1];
  } else {
    std::fprintf(stderr, "%s", kUsage);
    return 2;
  }
  auto endpoint = resolve_admin_endpoint(o.endpoint, o.data_dir, o.region);
  if (!endpoint.ok()) return fail(endpoint.status());
  auto out = call_admin(*endpoint, action, args);
  if (!out.ok()) return fail(out.status());
  const json& r = *out;
  if (o.json_out) {
    std::printf("%s\n", r.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  if (action == "Status") {
    const json& h = r.value("Host", json::object());
    std::printf("Sandboxes: %s live (%s idle, %s busy) of %s\n", text(h.value("Sandboxes", json())).c_str(),
                text(h.value("Idle", json())).c_str(), text(h.value("Busy", json())).c_str(),
                text(h.value("MaxSandboxes", json())).c_str());
    std::printf("Memory:    %s MB reserved by sandboxes, %s MB used on the host\n",
                text(h.value("MemoryReservedMB", json())).c_str(), text(h.value("HostMemoryUsedMB", json())).c_str());
    bool queues = false;
    const json gauges = r.value("Gauges", json::object());
    for (const auto& [k, v] : gauges.items()) {
      if (k.rfind("kiln_async", 0) != 0 && k.rfind("kiln_dead", 0) != 0) continue;
      if (!queues) std::printf("Queues:\n");
      queues = true;
      std::printf("  %s = %s\n", k.c_str(), text(v).c_str());
    }
    std::printf("\n");
    print_table({"ACCOUNT", "FUNCTION", "VERSION", "IDLE", "BUSY"},
                rows_of(r.value("Functions", json::array()), {"AccountId", "FunctionName", "Version", "Idle", "Busy"}));
  } else if (action == "ListSandboxes") {
    print_table({"ID", "FUNCTION", "VERSION", "STATE", "AGE_S", "MEMORY_MB", "MAX_USED_MB"},
                rows_of(r.value("Sandboxes", json::array()),
                        {"Id", "FunctionName", "Version", "State", "AgeSeconds", "MemorySizeMB", "MaxMemoryUsedMB"}));
  } else if (action == "ListDeadLetters") {
    print_table({"ID", "REQUEST_ID", "FUNCTION", "QUALIFIER", "CONDITION", "ATTEMPTS", "LAST_ERROR"},
                rows_of(r.value("DeadLetters", json::array()),
                        {"Id", "RequestId", "FunctionArn", "Qualifier", "Condition", "Attempts", "LastError"}));
  } else if (action == "ReplayDeadLetter") {
    std::printf("Replayed as request %s\n", text(r.value("RequestId", json())).c_str());
  } else if (action == "ListAccessKeys") {
    print_table({"ACCESS_KEY_ID", "ACCOUNT"}, rows_of(r.value("AccessKeys", json::array()), {"AccessKeyId", "AccountId"}));
  } else if (action == "CreateAccessKey") {
    std::printf("AccessKeyId:     %s\nSecretAccessKey: %s\nAccountId:       %s\n(the secret is shown only once)\n",
                text(r["AccessKeyId"]).c_str(), text(r["SecretAccessKey"]).c_str(), text(r["AccountId"]).c_str());
  } else if (action == "RevokeAccessKey") {
    std::printf("Revoked %s\n", o.positional[1].c_str());
  }
  return 0;
}

}  // namespace kiln::cli
