#include "api/router.h"

#include <vector>

namespace kiln::api {

namespace {

struct Operation {
  const char* name;
  const char* method;
  const char* uri;
  const char* fixed_query;  // "key=value" the request must carry ("" for none)
  int code;
};

constexpr Operation kOperations[] = {
#include "api/operations.inc"
};

// Segments of a path; a trailing slash is not a segment (SDKs differ on sending it).
std::vector<std::string_view> split_path(std::string_view path) {
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  std::vector<std::string_view> out;
  size_t start = 1;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool percent_decode(std::string_view s, std::string* out) {
  out->clear();
  out->reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out->push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return false;
    int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

std::optional<RouteMatch> route(std::string_view method, std::string_view target) {
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  if (path.empty() || path[0] != '/') return std::nullopt;
  auto segments = split_path(path);

  const Operation* best = nullptr;
  int best_literals = -1;
  for (const Operation& op : kOperations) {
    if (method != op.method) continue;
    auto tmpl = split_path(op.uri);
    if (tmpl.size() != segments.size()) continue;
    int literals = 0;
    bool ok = true;
    for (size_t i = 0; i < tmpl.size() && ok; ++i) {
      bool param = !tmpl[i].empty() && tmpl[i].front() == '{';
      if (param) {
        ok = !segments[i].empty();
      } else {
        ok = tmpl[i] == segments[i];
        literals++;
      }
    }
    std::string_view fixed = op.fixed_query;
    if (ok && !fixed.empty()) {
      // The operation is told apart by a query parameter (e.g. ?find=LayerVersion).
      std::string needle(fixed);
      ok = ("&" + std::string(query) + "&").find("&" + needle + "&") != std::string::npos;
      literals++;
    }
    if (ok && literals > best_literals) {
      best = &op;
      best_literals = literals;
    }
  }
  if (!best) return std::nullopt;

  RouteMatch m;
  m.operation = best->name;
  m.success_code = best->code;
  auto tmpl = split_path(best->uri);
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (!tmpl[i].empty() && tmpl[i].front() == '{') {
      std::string name(tmpl[i].substr(1, tmpl[i].size() - 2));
      std::string value;
      if (!percent_decode(segments[i], &value)) return std::nullopt;
      m.params[name] = value;
    }
  }
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    std::string key, value;
    percent_decode(pair.substr(0, eq), &key);
    if (eq != std::string_view::npos) percent_decode(pair.substr(eq + 1), &value);
    if (!key.empty()) {
      m.query[key] = value;
      m.query_list.emplace_back(key, value);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return m;
}

}  // namespace kiln::api
