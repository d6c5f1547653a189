// CloudWatch Logs filter patterns for unstructured events, the subset Kiln serves:
//   ERROR              events containing the term (case-sensitive)
//   ERROR timeout      every term (AND)
//   "Task timed out"   a quoted phrase, matched as is
//   ?ERROR ?WARN       any of the ?-terms (OR)
//   ERROR -retry       terms prefixed with - must be absent
// An empty pattern matches everything. JSON ({ $.x = ... }) and space-delimited
// ([a, b]) patterns are refused with InvalidParameterException.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiln::logs {

class FilterPattern {
 public:
  static StatusOr<FilterPattern> parse(std::string_view pattern);
  bool matches(std::string_view message) const;

 private:
  std::vector<std::string> all_;   // every one must occur
  std::vector<std::string> any_;   // at least one must occur (when non-empty)
  std::vector<std::string> none_;  // none may occur
};

}  // namespace kiln::logs
