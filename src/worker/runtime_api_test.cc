#include "worker/runtime_api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kiln::worker {
namespace {

TEST(RouteRuntimeRequest, NamesEachCall) {
  EXPECT_EQ(route_runtime_request("GET", "/2018-06-01/runtime/invocation/next").call, RuntimeCall::kNext);
  EXPECT_EQ(route_runtime_request("POST", "/2018-06-01/runtime/init/error").call, RuntimeCall::kInitError);
  RuntimeRoute r = route_runtime_request("POST", "/2018-06-01/runtime/invocation/abc-123/response");
  EXPECT_EQ(r.call, RuntimeCall::kResponse);
  EXPECT_EQ(r.request_id, "abc-123");
  r = route_runtime_request("POST", "/2018-06-01/runtime/invocation/abc-123/error");
  EXPECT_EQ(r.call, RuntimeCall::kError);
  EXPECT_EQ(r.request_id, "abc-123");
}

TEST(RouteRuntimeRequest, RefusesWrongMethodsAndPaths) {
  EXPECT_EQ(route_runtime_request("POST", "/2018-06-01/runtime/invocation/next").call, RuntimeCall::kUnknown);
  EXPECT_EQ(route_runtime_request("GET", "/2018-06-01/runtime/init/error").call, RuntimeCall::kUnknown);
  EXPECT_EQ(route_runtime_request("GET", "/2018-06-01/runtime/invocation/id/response").call, RuntimeCall::kUnknown);
  EXPECT_EQ(route_runtime_request("POST", "/2018-06-01/runtime/invocation/id/a/response").call,
            RuntimeCall::kUnknown);
  EXPECT_EQ(route_runtime_request("POST", "/2018-06-01/runtime/invocation/id").call, RuntimeCall::kUnknown);
  EXPECT_EQ(route_runtime_request("GET", "/2018-06-01/runtime/").call, RuntimeCall::kUnknown);
  EXPECT_EQ(route_runtime_request("GET", "").call, RuntimeCall::kUnknown);
  EXPECT_EQ(route_runtime_request("GET", "/2020-01-01/extension/register").call, RuntimeCall::kUnknown);
}

TEST(RouteRuntimeRequest, NamesTheSnapStartCalls) {
  RuntimeRoute r = route_runtime_request("GET", "/2018-06-01/runtime/restore/next");
  EXPECT_EQ(r.call, RuntimeCall::kRestoreNext);
  EXPECT_EQ(r.request_id, "");
  r = route_runtime_request("POST", "/2018-06-01/runtime/restore/error");
  EXPECT_EQ(r.call, RuntimeCall::kRestoreError);
  EXPECT_EQ(r.request_id, "");
  EXPECT_EQ(route_runtime_request("POST", "/2018-06-01/runtime/restore/next").call, RuntimeCall::kUnknown);
  EXPECT_EQ(route_runtime_request("GET", "/2018-06-01/runtime/restore/error").call, RuntimeCall::kUnknown);
  EXPECT_EQ(route_runtime_request("GET", "/2018-06-01/runtime/restore/next/").call, RuntimeCall::kUnknown);
  EXPECT_EQ(route_runtime_request("GET", "/2018-06-01/runtime/restore").call, RuntimeCall::kUnknown);
}

TEST(RouteRuntimeRequest, KeepsAnEmptyIdForTheCallerToRefuse) {
  RuntimeRoute r = route_runtime_request("POST", "/2018-06-01/runtime/invocation//response");
  EXPECT_EQ(r.call, RuntimeCall::kResponse);
  EXPECT_EQ(r.request_id, "");
}

TEST(ErrorDocument, EscapesJson) {
  auto doc = nlohmann::json::parse(error_document("Bad\"Type\\", "line\nnext\x01"));
  EXPECT_EQ(doc["errorType"], "Bad\"Type\\");
  EXPECT_EQ(doc["errorMessage"], "line\nnext\x01");
}

// Regression (found by fuzz/runtime_api_fuzz): a runtime that sends a
// Lambda-Runtime-Function-Error-Type header that is not UTF-8 made Kiln record an
// error document that is not JSON, which later crashed nlohmann's dump().
TEST(ErrorDocument, IsValidJsonForAnyBytes) {
  for (std::string_view bad : {"\xff\xfe", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ok\xe2\x82", "\xe2"}) {
    std::string doc = error_document(bad, bad);
    EXPECT_TRUE(nlohmann::json::accept(doc)) << doc;
  }
  auto doc = nlohmann::json::parse(error_document("caf\xc3\xa9 \xf0\x9f\x98\x80", "\xff"));
  EXPECT_EQ(doc["errorType"], "caf\xc3\xa9 \xf0\x9f\x98\x80");  // valid UTF-8 is kept
  EXPECT_EQ(doc["errorMessage"], "\xef\xbf\xbd");
}

TEST(PostedError, KeepsTheBodyAsSent) {
  EXPECT_EQ(posted_error("not json \xff", "Type", "Unhandled", ""), "not json \xff");
}

TEST(PostedError, BuildsADocumentFromTheHeaderWhenTheBodyIsEmpty) {
  auto doc = nlohmann::json::parse(posted_error("", "Custom.Error", "Unhandled", "init failed"));
  EXPECT_EQ(doc["errorType"], "Custom.Error");
  EXPECT_EQ(doc["errorMessage"], "init failed");
  doc = nlohmann::json::parse(posted_error("", "", "Runtime.Unknown", ""));
  EXPECT_EQ(doc["errorType"], "Runtime.Unknown");
}

}  // namespace
}  // namespace kiln::worker
