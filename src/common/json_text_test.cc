// json_text and parse_number on hostile input: invalid UTF-8, deep nesting, huge numbers.
#include "common/json_text.h"

#include <gtest/gtest.h>

#include "common/numbers.h"

namespace kiln {
namespace {

using nlohmann::json;

std::string nested_arrays(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(JsonText, DumpReplacesInvalidUtf8InsteadOfThrowing) {
  json j = {{"message", std::string("bad \xff\xfe end")}};
  std::string text = json_text::dump(j);
  EXPECT_TRUE(json::accept(text)) << text;
  EXPECT_EQ(json::parse(text)["message"], "bad \xEF\xBF\xBD\xEF\xBF\xBD end");
}

TEST(JsonText, ValidUtf8KeepsValidTextAndReplacesTheRest) {
  EXPECT_EQ(json_text::valid_utf8("plain \xC3\xA9 \xF0\x9F\x98\x80"), "plain \xC3\xA9 \xF0\x9F\x98\x80");
  EXPECT_EQ(json_text::valid_utf8("\xff"), "\xEF\xBF\xBD");
  EXPECT_EQ(json_text::valid_utf8("\xC0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(json_text::valid_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(json_text::valid_utf8("a\xE2\x82"), "a\xEF\xBF\xBD\xEF\xBF\xBD");  // truncated
  EXPECT_TRUE(json::accept(json(json_text::valid_utf8("\xff\xfe\x80")).dump()));
}

TEST(JsonText, IsJsonHoldsForDeepNestingWithoutRecursion) {
  EXPECT_TRUE(json_text::is_json(nested_arrays(100000)));
  EXPECT_FALSE(json_text::is_json(std::string(100000, '[')));
  EXPECT_FALSE(json_text::is_json("\"\xff\""));
  EXPECT_FALSE(json_text::is_json(""));
  EXPECT_TRUE(json_text::is_json(" {\"a\": [1, 2]} "));
  // Found by fuzz.invocation_record: the parser stops at a NUL as if the input ended.
  EXPECT_FALSE(json_text::is_json(std::string("0\0junk", 6)));
  EXPECT_FALSE(json_text::is_json(std::string("{}\0", 3)));
}

TEST(JsonText, ParseBoundedRefusesDeepDocuments) {
  EXPECT_TRUE(json_text::parse_bounded(nested_arrays(100000)).is_discarded());
  EXPECT_TRUE(json_text::parse_bounded("{\"a\":").is_discarded());
  json ok = json_text::parse_bounded(nested_arrays(10));
  EXPECT_FALSE(ok.is_discarded());
  EXPECT_EQ(json_text::dump(ok), nested_arrays(10));
}

TEST(JsonText, EmbedKeepsJsonBytesAndQuotesTheRest) {
  EXPECT_EQ(json_text::embed("{\"a\": 1}"), "{\"a\": 1}");
  EXPECT_EQ(json_text::embed("not json"), "\"not json\"");
  std::string bad = json_text::embed("\xff\xfe");
  EXPECT_TRUE(json::accept(bad)) << bad;
  std::string deep = nested_arrays(100000);
  EXPECT_EQ(json_text::embed(deep), deep);
}

TEST(ParseNumber, RefusesAnythingButAWholeNumberThatFits) {
  EXPECT_EQ(parse_number<int64_t>("42"), 42);
  EXPECT_EQ(parse_number<int64_t>("-7"), -7);
  EXPECT_EQ(parse_number<int64_t>("9999999999999999999"), std::nullopt);
  EXPECT_EQ(parse_number<uint64_t>("99999999999999999999999"), std::nullopt);
  EXPECT_EQ(parse_number<uint64_t>("-1"), std::nullopt);
  EXPECT_EQ(parse_number<int>("+1"), std::nullopt);
  EXPECT_EQ(parse_number<int>("1x"), std::nullopt);
  EXPECT_EQ(parse_number<int>(""), std::nullopt);
  EXPECT_EQ(parse_number<int>(" 1"), std::nullopt);
}

}  // namespace
}  // namespace kiln
