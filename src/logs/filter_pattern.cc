#include "logs/filter_pattern.h"

namespace kiln::logs {

namespace {

Status invalid(const std::string& m) { return {400, "InvalidParameterException", m}; }

}  // namespace

StatusOr<FilterPattern> FilterPattern::parse(std::string_view p) {
  FilterPattern out;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < p.size() && (p[i] == ' ' || p[i] == '\t')) ++i;
  };
  skip_space();
  if (i < p.size() && (p[i] == '{' || p[i] == '[')) {
    return invalid("Kiln supports term and quoted-phrase filter patterns only, not JSON or space-delimited ones.");
  }
  while (skip_space(), i < p.size()) {
    char kind = 0;
    if (p[i] == '?' || p[i] == '-') kind = p[i++];
    std::string term;
    if (i < p.size() && p[i] == '"') {
      ++i;
      bool closed = false;
      while (i < p.size()) {
        char c = p[i++];
        if (c == '\\' && i < p.size()) {
          term += p[i++];
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          term += c;
        }
      }
      if (!closed) return invalid("Invalid filter pattern: unterminated quoted phrase.");
    } else {
      while (i < p.size() && p[i] != ' ' && p[i] != '\t') term += p[i++];
    }
    if (term.empty()) {
      if (kind) return invalid("Invalid filter pattern: an operator needs a term.");
      continue;
    }
    (kind == '?' ? out.any_ : kind == '-' ? out.none_ : out.all_).push_back(std::move(term));
  }
  return out;
}

bool FilterPattern::matches(std::string_view message) const {
  for (const auto& t : none_) {
    if (message.find(t) != std::string_view::npos) return false;
  }
  for (const auto& t : all_) {
    if (message.find(t) == std::string_view::npos) return false;
  }
  if (any_.empty()) return true;
  for (const auto& t : any_) {
    if (message.find(t) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace kiln::logs
