#include "logs/filter_pattern.h"

#include <gtest/gtest.h>

namespace kiln::logs {
namespace {

bool match(const char* pattern, const char* message) {
  auto p = FilterPattern::parse(pattern);
  EXPECT_TRUE(p.ok()) << pattern;
  return p.ok() && p->matches(message);
}

TEST(FilterPattern, EmptyMatchesEverything) {
  EXPECT_TRUE(match("", "anything"));
  EXPECT_TRUE(match("   ", "anything"));
}

TEST(FilterPattern, AllTermsMustOccurCaseSensitive) {
  EXPECT_TRUE(match("ERROR timeout", "ERROR: request timeout"));
  EXPECT_FALSE(match("ERROR timeout", "ERROR: request failed"));
  EXPECT_FALSE(match("ERROR", "error lower case"));
}

TEST(FilterPattern, QuotedPhraseMatchesAsWhole) {
  EXPECT_TRUE(match("\"Task timed out\"", "abc Task timed out after 3.00 seconds"));
  EXPECT_FALSE(match("\"Task timed out\"", "Task out timed"));
  EXPECT_TRUE(match("\"say \\\"hi\\\"\"", "they say \"hi\" here"));
}

TEST(FilterPattern, QuestionTermsAreAlternatives) {
  EXPECT_TRUE(match("?ERROR ?WARN", "WARN disk"));
  EXPECT_TRUE(match("?ERROR ?WARN", "ERROR disk"));
  EXPECT_FALSE(match("?ERROR ?WARN", "INFO disk"));
}

TEST(FilterPattern, MinusTermsExclude) {
  EXPECT_TRUE(match("ERROR -retry", "ERROR final"));
  EXPECT_FALSE(match("ERROR -retry", "ERROR will retry"));
}

TEST(FilterPattern, RefusesJsonAndBrokenPatterns) {
  EXPECT_EQ(FilterPattern::parse("{ $.level = \"ERROR\" }").status().type(), "InvalidParameterException");
  EXPECT_EQ(FilterPattern::parse("[ip, user]").status().type(), "InvalidParameterException");
  EXPECT_FALSE(FilterPattern::parse("\"unterminated").ok());
  EXPECT_FALSE(FilterPattern::parse("ERROR - ").ok());
}

}  // namespace
}  // namespace kiln::logs
