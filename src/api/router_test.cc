#include "api/router.h"

#include <gtest/gtest.h>

namespace kiln::api {

TEST(Router, InvokeWithEncodedArnAndQualifier) {
  auto m = route("POST", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af/invocations?Qualifier=%24LATEST");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->operation, "Invoke");
  EXPECT_EQ(m->params["FunctionName"], "arn:aws:lambda:us-east-1:123456789012:function:f");
  EXPECT_EQ(m->query["Qualifier"], "$LATEST");
}

TEST(Router, MethodSelectsTheOperation) {
  EXPECT_EQ(route("GET", "/2015-03-31/functions")->operation, "ListFunctions");
  EXPECT_EQ(route("POST", "/2015-03-31/functions")->operation, "CreateFunction");
  EXPECT_EQ(route("GET", "/2015-03-31/functions/f")->operation, "GetFunction");
  EXPECT_EQ(route("GET", "/2015-03-31/functions/f/configuration")->operation, "GetFunctionConfiguration");
  EXPECT_EQ(route("DELETE", "/2015-03-31/functions/f")->operation, "DeleteFunction");
}

TEST(Router, UnimplementedOperationsAreStillNamed) {
  EXPECT_EQ(route("GET", "/2015-03-31/functions/f/aliases")->operation, "ListAliases");
}

TEST(Router, UnknownPathsAndBadEscapesMatchNothing) {
  EXPECT_FALSE(route("GET", "/nope"));
  EXPECT_FALSE(route("PATCH", "/2015-03-31/functions"));
  EXPECT_FALSE(route("GET", "/2015-03-31/functions/%zz"));
  EXPECT_FALSE(route("GET", "/2015-03-31/functions//configuration"));
}

}  // namespace kiln::api

namespace kiln::api {

TEST(Router, TrailingSlashAsTheCliV2SendsIt) {
  EXPECT_EQ(route("GET", "/2015-03-31/functions/")->operation, "ListFunctions");
  EXPECT_EQ(route("GET", "/2016-08-19/account-settings/")->operation, "GetAccountSettings");
}

TEST(Router, FixedQueryTellsOperationsOnTheSamePathApart) {
  EXPECT_EQ(route("GET", "/2018-10-31/layers")->operation, "ListLayers");
  EXPECT_EQ(route("GET", "/2018-10-31/layers?find=LayerVersion&Arn=x")->operation, "GetLayerVersionByArn");
  EXPECT_EQ(route("GET", "/2019-09-30/functions/f/provisioned-concurrency?List=ALL")->operation,
            "ListProvisionedConcurrencyConfigs");
  EXPECT_EQ(route("GET", "/2019-09-30/functions/f/provisioned-concurrency?Qualifier=1")->operation,
            "GetProvisionedConcurrencyConfig");
}

}  // namespace kiln::api
