#include "common/crypto.h"

#include <gtest/gtest.h>

namespace kiln::crypto {

TEST(Crypto, Sha256MatchesKnownVector) {
  EXPECT_EQ(hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Crypto, HmacMatchesRfc4231Case2) {
  EXPECT_EQ(hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Crypto, Base64RoundTripsEveryLength) {
  std::string raw;
  for (int n = 0; n < 40; ++n) {
    std::string decoded;
    ASSERT_TRUE(base64_decode(base64(raw), &decoded));
    EXPECT_EQ(decoded, raw);
    raw.push_back(static_cast<char>(n * 37));
  }
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64("fo"), "Zm8=");
}

TEST(Crypto, Base64RejectsGarbage) {
  std::string out;
  EXPECT_FALSE(base64_decode("ab$d", &out));
  EXPECT_FALSE(base64_decode("a", &out));
}

TEST(Crypto, ConstantTimeEquality) {
  EXPECT_TRUE(equal_constant_time("abc", "abc"));
  EXPECT_FALSE(equal_constant_time("abc", "abd"));
  EXPECT_FALSE(equal_constant_time("abc", "abcd"));
}

}  // namespace kiln::crypto

namespace kiln::crypto {

TEST(Crypto, HmacWithKeyLongerThanABlockMatchesRfc4231Case6) {
  std::string key(131, '\xaa');
  EXPECT_EQ(hex(hmac_sha256(key, "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

}  // namespace kiln::crypto
