// The invocation record on hostile payloads: any depth, any bytes, always valid JSON.
#include "async/invocation_record.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kiln::async {
namespace {

using nlohmann::json;

RecordInput input(std::string request, std::optional<std::string> response) {
  RecordInput in;
  in.now_ms = 1573755365568;
  in.request_id = "r-1";
  in.qualified_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST";
  in.condition = "Success";
  in.approximate_invoke_count = 1;
  in.request_payload = std::move(request);
  AttemptResponse r;
  r.executed_version = "$LATEST";
  r.payload = std::move(response);
  in.response = r;
  return in;
}

TEST(InvocationRecord, JsonPayloadsAreEmbeddedAsJson) {
  std::string text = invocation_record(input("{\"k\": [1, 2]}", "\"done\""));
  json j = json::parse(text);
  EXPECT_EQ(j["version"], "1.0");
  EXPECT_EQ(j["timestamp"], "2019-11-14T18:16:05.568Z");
  EXPECT_EQ(j["requestContext"]["requestId"], "r-1");
  EXPECT_EQ(j["requestContext"]["approximateInvokeCount"], 1);
  EXPECT_EQ(j["requestPayload"]["k"][1], 2);
  EXPECT_EQ(j["responseContext"]["statusCode"], 200);
  EXPECT_EQ(j["responseContext"]["executedVersion"], "$LATEST");
  EXPECT_EQ(j["responsePayload"], "done");
}

TEST(InvocationRecord, NonJsonResponseIsEmbeddedAsString) {
  json j = json::parse(invocation_record(input("", "plain text")));
  EXPECT_EQ(j["requestPayload"], json::object());
  EXPECT_EQ(j["responsePayload"], "plain text");
}

TEST(InvocationRecord, InvalidUtf8PayloadsGiveValidJson) {
  std::string text = invocation_record(input("\xff\xfe", "{\"a\":\"\xff\"}"));
  ASSERT_TRUE(json::accept(text)) << text;
  json j = json::parse(text);
  EXPECT_TRUE(j["requestPayload"].is_string());
  EXPECT_TRUE(j["responsePayload"].is_string());
}

TEST(InvocationRecord, HundredThousandDeepPayloadIsEmbeddedAsItsBytes) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::string text = invocation_record(input(deep, deep));
  EXPECT_TRUE(json::accept(text));
  EXPECT_NE(text.find("\"requestPayload\":" + deep), std::string::npos);
  EXPECT_NE(text.find("\"responsePayload\":" + deep), std::string::npos);
}

}  // namespace
}  // namespace kiln::async
