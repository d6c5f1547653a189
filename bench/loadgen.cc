// kiln_loadgen: a closed-loop HTTP/1.1 load generator for Kiln's benchmarks. See
// load_options.h for the flags and load_loop.h for what is measured; prints one JSON
// object on stdout. Exit status: 0 when at least one response was measured, 1 when
// none was (nothing listening, every response malformed), 2 on a bad command line.
#include <cstdio>
#include <string>

#include "load_loop.h"
#include "load_options.h"

int main(int argc, char** argv) {
  std::string error;
  auto options = kiln::bench::parse_load_options(argc, argv, &error);
  if (!options) {
    std::fprintf(stderr, "kiln_loadgen: %s\n%s", error.c_str(), kiln::bench::kLoadgenUsage);
    return 2;
  }
  kiln::bench::RunResult result = kiln::bench::run_load(*options);
  std::printf("%s\n", kiln::bench::to_json(result).c_str());
  return result.responses > 0 ? 0 : 1;
}
