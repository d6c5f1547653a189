// Unit tests of the load generator's pieces: response framing, percentiles, request
// building and signing, option parsing. The closed loop itself is exercised against a
// real server by bench/run.sh.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "api/sigv4.h"
#include "http_response_parser.h"
#include "latency_stats.h"
#include "load_options.h"

namespace kiln::bench {
namespace {

using State = ParsedResponse::State;

TEST(ParseHttpResponse, FramesContentLengthBodyAndLeavesPipelinedBytes) {
  std::string wire = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200";
  ParsedResponse r = parse_http_response(wire);
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.consumed, wire.size() - 12);
  EXPECT_FALSE(r.function_error);
}

TEST(ParseHttpResponse, NeedsMoreUntilHeadAndBodyArrive) {
  EXPECT_EQ(parse_http_response("HTTP/1.1 200 OK\r\nContent-Len").state, State::kNeedMore);
  EXPECT_EQ(parse_http_response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc").state,
            State::kNeedMore);
}

TEST(ParseHttpResponse, FramesChunkedBodyWithExtensionsAndTrailers) {
  std::string wire =
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\nA\r\n0123456789\r\n"
      "0\r\nTrailer: v\r\n\r\n";
  ParsedResponse r = parse_http_response(wire);
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_EQ(parse_http_response(wire.substr(0, wire.size() - 1)).state, State::kNeedMore);
  EXPECT_EQ(parse_http_response(wire.substr(0, 60)).state, State::kNeedMore);
}

TEST(ParseHttpResponse, ReportsFunctionErrorStatusAndConnectionClose) {
  ParsedResponse r = parse_http_response(
      "HTTP/1.1 502 Bad Gateway\r\nX-Amz-Function-Error: Unhandled\r\nConnection: close\r\n"
      "Content-Length: 0\r\n\r\n");
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_EQ(r.status, 502);
  EXPECT_TRUE(r.function_error);
  EXPECT_TRUE(r.connection_close);
}

TEST(ParseHttpResponse, RejectsMalformedInput) {
  EXPECT_EQ(parse_http_response("HTTX/1.1 200 OK\r\n\r\n").state, State::kMalformed);
  EXPECT_EQ(parse_http_response("HTTP/1.1 2x0 OK\r\n\r\n").state, State::kMalformed);
  EXPECT_EQ(parse_http_response("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n").state,
            State::kMalformed);
  EXPECT_EQ(parse_http_response("HTTP/1.1 200 OK\r\nno colon\r\n\r\n").state, State::kMalformed);
  EXPECT_EQ(
      parse_http_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").state,
      State::kMalformed);
  EXPECT_EQ(parse_http_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "2\r\nabXY0\r\n\r\n")
                .state,
            State::kMalformed);
  // A 200 without a length would be close-delimited, which the generator refuses.
  EXPECT_EQ(parse_http_response("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n").state, State::kMalformed);
  EXPECT_EQ(parse_http_response(std::string(70000, 'a')).state, State::kMalformed);
}

TEST(ParseHttpResponse, FramesBodylessStatusesWithoutLength) {
  ParsedResponse r = parse_http_response("HTTP/1.1 204 No Content\r\n\r\nextra");
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_EQ(r.consumed, 27u);
}

TEST(LatencyStats, NearestRankPercentiles) {
  std::vector<uint64_t> samples;
  for (uint64_t i = 100; i >= 1; --i) samples.push_back(i * 1000);  // 1..100 us, reversed
  LatencySummary s = summarize(samples);
  EXPECT_EQ(s.count, 100u);
  EXPECT_DOUBLE_EQ(s.p50_us, 50);
  EXPECT_DOUBLE_EQ(s.p90_us, 90);
  EXPECT_DOUBLE_EQ(s.p99_us, 99);
  EXPECT_DOUBLE_EQ(s.max_us, 100);
  EXPECT_DOUBLE_EQ(s.mean_us, 50.5);
  EXPECT_EQ(percentile(samples, 0), 1000u);
  EXPECT_EQ(percentile(samples, 100), 100000u);
}

TEST(LatencyStats, EmptyAndSingleSample) {
  std::vector<uint64_t> none;
  EXPECT_EQ(summarize(none).count, 0u);
  EXPECT_EQ(percentile(none, 50), 0u);
  std::vector<uint64_t> one = {7000};
  LatencySummary s = summarize(one);
  EXPECT_DOUBLE_EQ(s.p50_us, 7);
  EXPECT_DOUBLE_EQ(s.p99_us, 7);
}

TEST(LatencyStats, JsonEscapesAndReportsThroughput) {
  RunResult r;
  r.url = "http://x/\"q\"";
  r.duration_s = 2;
  r.responses = 10;
  r.first_status_line = "HTTP/1.1 200 OK\t";
  std::string json = to_json(r);
  EXPECT_NE(json.find("\"throughput_rps\":5.0"), std::string::npos) << json;
  EXPECT_NE(json.find("http://x/\\\"q\\\""), std::string::npos) << json;
  EXPECT_NE(json.find("OK\\u0009"), std::string::npos) << json;
}

std::optional<LoadOptions> parse(std::vector<const char*> args, std::string* error) {
  args.insert(args.begin(), "kiln_loadgen");
  return parse_load_options(static_cast<int>(args.size()), const_cast<char**>(args.data()), error);
}

TEST(LoadOptions, ParsesUrlAndFlags) {
  std::string error;
  auto o = parse({"--url", "http://localhost:9001/2015-03-31/functions/f/invocations",
                  "--connections", "64", "--threads", "2", "--duration", "1.5", "--warmup", "0",
                  "--header", "X-Amz-Log-Type:  None", "--body", "{}"},
                 &error);
  ASSERT_TRUE(o) << error;
  EXPECT_EQ(o->host, "127.0.0.1");
  EXPECT_EQ(o->port, 9001);
  EXPECT_EQ(o->target, "/2015-03-31/functions/f/invocations");
  EXPECT_EQ(o->connections, 64);
  EXPECT_EQ(o->threads, 2);
  EXPECT_DOUBLE_EQ(o->duration_s, 1.5);
  ASSERT_EQ(o->headers.size(), 1u);
  EXPECT_EQ(o->headers[0].second, "None");
}

TEST(LoadOptions, RejectsBadInput) {
  std::string error;
  EXPECT_FALSE(parse({}, &error));
  EXPECT_FALSE(parse({"--url", "https://127.0.0.1/"}, &error));
  EXPECT_FALSE(parse({"--url", "http://127.0.0.1:99999/"}, &error));
  EXPECT_FALSE(parse({"--url", "http://example.com:80/"}, &error));
  EXPECT_FALSE(parse({"--url", "http://:80/"}, &error));
  EXPECT_FALSE(parse({"--url", "http://127.0.0.1:/"}, &error));
  EXPECT_FALSE(parse({"--url", "http://127.0.0.1:80/", "--connections", "0"}, &error));
  EXPECT_FALSE(parse({"--url", "http://127.0.0.1:80/", "--duration", "-1"}, &error));
  EXPECT_FALSE(parse({"--url", "http://127.0.0.1:80/", "--header", "novalue"}, &error));
  EXPECT_FALSE(parse({"--url", "http://127.0.0.1:80/", "--sign-key", "AKID"}, &error));
  EXPECT_FALSE(parse({"--url", "http://127.0.0.1:80/", "--bogus", "1"}, &error));
  EXPECT_FALSE(parse({"--url"}, &error));
  EXPECT_FALSE(parse({"--url", "http://127.0.0.1:80/", "--body-file", "/nonexistent/x"}, &error));
}

TEST(BuildRequest, UnsignedRequestIsPlainHttp) {
  std::string error;
  auto o = parse({"--url", "http://127.0.0.1:8080/", "--body", "{}"}, &error);
  ASSERT_TRUE(o) << error;
  std::string req = *build_request(*o, std::chrono::system_clock::now());
  EXPECT_EQ(req,
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n"
            "Content-Length: 2\r\n\r\n{}");
}

// The signed request must verify with Kiln's own verifier, as the server will run it.
TEST(BuildRequest, SignedRequestVerifiesWithKilnsVerifier) {
  struct Keys : api::CredentialLookup {
    std::optional<api::Credential> find(std::string_view id) const override {
      if (id != "AKIDBENCH") return std::nullopt;
      return api::Credential{"AKIDBENCH", "secret", "123456789012"};
    }
  } keys;
  std::string error;
  auto o = parse({"--url", "http://127.0.0.1:9001/2015-03-31/functions/f/invocations", "--body",
                  "{\"a\":1}", "--sign-key", "AKIDBENCH", "--sign-secret", "secret"},
                 &error);
  ASSERT_TRUE(o) << error;
  auto now = std::chrono::system_clock::now();
  std::string wire = *build_request(*o, now);
  // Split the wire bytes back into the verifier's view of the request.
  size_t head_end = wire.find("\r\n\r\n");
  std::string head = wire.substr(0, head_end + 2);
  api::SignedRequest req;
  req.method = "POST";
  req.target = o->target;
  req.body = std::string_view(wire).substr(head_end + 4);
  std::vector<std::string> lines;
  for (size_t pos = head.find("\r\n") + 2; pos < head.size();) {
    size_t eol = head.find("\r\n", pos);
    lines.push_back(head.substr(pos, eol - pos));
    pos = eol + 2;
  }
  for (const std::string& line : lines) {
    size_t colon = line.find(':');
    req.headers.emplace_back(std::string_view(line).substr(0, colon),
                             std::string_view(line).substr(colon + 2));
  }
  auto principal = api::verify_sigv4(req, keys, "us-east-1", "lambda", now);
  ASSERT_TRUE(principal.ok()) << principal.status().message();
  EXPECT_EQ(principal->account_id, "123456789012");
  // Tampering with the body breaks the signature.
  std::string tampered = "{\"a\":2}";
  req.body = tampered;
  EXPECT_FALSE(api::verify_sigv4(req, keys, "us-east-1", "lambda", now).ok());
}

}  // namespace
}  // namespace kiln::bench
