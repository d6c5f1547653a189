# Registers the fuzzing tier with ctest (included by the top-level CMakeLists.txt).
# fuzz.build configures and builds the clang project in fuzz/ (CMakeLists.txt here) in
# ${CMAKE_BINARY_DIR}/fuzz, as a fixture; then fuzz.<name> runs <name>_fuzz for
# KILN_FUZZ_SECONDS over a fresh copy of fuzz/corpus/<name> (the source tree is never
# written) and fails on any crash, sanitizer report, leak, timeout or out-of-memory.
#   ctest --test-dir build -L fuzz --output-on-failure
set(KILN_FUZZ_SECONDS 20 CACHE STRING "Seconds each fuzz target runs in make test")
set(KILN_FUZZ_TARGETS http_request sigv4 router zip_extract runtime_api invocation_record)
set(_fuzz_dir ${CMAKE_CURRENT_LIST_DIR})
set(_fuzz_build ${CMAKE_BINARY_DIR}/fuzz)

add_test(NAME fuzz.build COMMAND bash ${_fuzz_dir}/build.sh ${_fuzz_dir} ${_fuzz_build})
set_tests_properties(fuzz.build PROPERTIES LABELS fuzz TIMEOUT 900 FIXTURES_SETUP fuzz_targets)

foreach(_name ${KILN_FUZZ_TARGETS})
  add_test(NAME fuzz.${_name}
           COMMAND bash ${_fuzz_dir}/run.sh ${_fuzz_build}/${_name}_fuzz ${_fuzz_dir}/corpus/${_name}
                   ${_fuzz_build}/runs/${_name} ${KILN_FUZZ_SECONDS})
  set_tests_properties(fuzz.${_name} PROPERTIES LABELS fuzz TIMEOUT 300 FIXTURES_REQUIRED fuzz_targets)
endforeach()
