// Tests of the cluster PKI: CA creation, node issuance, chain verification, name checks.
#include "net/certs.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "test_util.h"

namespace vigil::net {
namespace {

using testing::TempDir;

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

X509Ptr load(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return nullptr;
  X509Ptr x(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  return x;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

// Verifies `leaf` against `ca` for TLS client or server use; returns the X509 error code.
int verify(X509* ca, X509* leaf, int purpose) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx, purpose);
  const int ok = X509_verify_cert(ctx);
  const int code = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return code;
}

TEST(CertsTest, InitCreatesCaFilesAndRefusesToOverwrite) {
  TempDir tmp;
  const std::string dir = tmp.file("pki");  // created by cert_init
  ASSERT_TRUE(cert_init(dir, "prod").ok());
  EXPECT_EQ(mode_of(dir + "/ca.key"), 0600u);
  EXPECT_EQ(mode_of(dir + "/ca.crt") & 0600, 0600u);
  X509Ptr ca = load(dir + "/ca.crt");
  ASSERT_TRUE(ca);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_EQ(X509_check_issued(ca.get(), ca.get()), X509_V_OK);  // self-signed
  EXPECT_EQ(verify(ca.get(), ca.get(), X509_PURPOSE_ANY), X509_V_OK);

  // Valid for about ten years.
  int days = 0, secs = 0;
  ASSERT_EQ(
      ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(ca.get()), X509_get0_notAfter(ca.get())), 1);
  EXPECT_GE(days, 3652);
  EXPECT_LE(days, 3654);

  EVP_PKEY* pub = X509_get0_pubkey(ca.get());
  ASSERT_NE(pub, nullptr);
  EXPECT_TRUE(EVP_PKEY_is_a(pub, "EC"));
  char curve[64] = {};
  size_t len = 0;
  ASSERT_EQ(EVP_PKEY_get_utf8_string_param(pub, "group", curve, sizeof(curve), &len), 1);
  EXPECT_STREQ(curve, "prime256v1");

  const auto before = std::filesystem::last_write_time(dir + "/ca.key");
  Status again = cert_init(dir, "prod");
  EXPECT_EQ(again.code(), Errc::kAlreadyExists);
  EXPECT_NE(again.message().find("ca.key already exists"), std::string::npos) << again.message();
  EXPECT_EQ(std::filesystem::last_write_time(dir + "/ca.key"), before);
}

TEST(CertsTest, InitRefusesWhenOnlyTheCertificateExists) {
  TempDir tmp;
  std::ofstream(tmp.file("ca.crt")) << "x";
  EXPECT_EQ(cert_init(tmp.path(), "prod").code(), Errc::kAlreadyExists);
  EXPECT_FALSE(std::filesystem::exists(tmp.file("ca.key")));
}

TEST(CertsTest, InitValidatesClusterName) {
  TempDir tmp;
  EXPECT_EQ(cert_init(tmp.path(), "").code(), Errc::kInvalidArgument);
  EXPECT_EQ(cert_init(tmp.path(), std::string(61, 'a')).code(), Errc::kInvalidArgument);
  EXPECT_EQ(cert_init(tmp.path(), "bad\nname").code(), Errc::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(tmp.file("ca.key")));
}

TEST(CertsTest, IssuedCertificateChainsToCaAndNamesTheNode) {
  TempDir tmp;
  ASSERT_TRUE(cert_init(tmp.path(), "prod").ok());
  Status s = cert_issue(tmp.path(), "n1");
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(mode_of(tmp.file("n1.key")), 0600u);

  X509Ptr ca = load(tmp.file("ca.crt"));
  X509Ptr n1 = load(tmp.file("n1.crt"));
  ASSERT_TRUE(ca && n1);
  EXPECT_EQ(verify(ca.get(), n1.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(verify(ca.get(), n1.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_EQ(X509_check_ca(n1.get()), 0);
  EXPECT_EQ(X509_check_host(n1.get(), "n1", 0, 0, nullptr), 1);  // SAN DNS:n1
  EXPECT_EQ(X509_check_host(n1.get(), "n2", 0, 0, nullptr), 0);
  // Not valid past the CA.
  EXPECT_LE(ASN1_TIME_compare(X509_get0_notAfter(n1.get()), X509_get0_notAfter(ca.get())), 0);

  auto name = cert_node_name(n1.get());
  ASSERT_TRUE(name.has_value()) << name.error().to_string();
  EXPECT_EQ(*name, "n1");
  auto from_file = cert_file_node_name(tmp.file("n1.crt"));
  ASSERT_TRUE(from_file.has_value());
  EXPECT_EQ(*from_file, "n1");

  EXPECT_TRUE(cert_verify_files(tmp.file("ca.crt"), tmp.file("n1.crt"), tmp.file("n1.key")).ok());
  EXPECT_EQ(cert_issue(tmp.path(), "n1").code(), Errc::kAlreadyExists);
}

TEST(CertsTest, CertificateFromAnotherCaDoesNotVerify) {
  TempDir a, b;
  ASSERT_TRUE(cert_init(a.path(), "prod").ok());
  ASSERT_TRUE(cert_init(b.path(), "prod").ok());  // same cluster name, different key
  ASSERT_TRUE(cert_issue(b.path(), "n1").ok());
  Status s = cert_verify_files(a.file("ca.crt"), b.file("n1.crt"), b.file("n1.key"));
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_NE(s.message().find("does not verify against CA"), std::string::npos) << s.message();
}

TEST(CertsTest, KeyOfAnotherNodeIsRefused) {
  TempDir tmp;
  ASSERT_TRUE(cert_init(tmp.path(), "prod").ok());
  ASSERT_TRUE(cert_issue(tmp.path(), "n1").ok());
  ASSERT_TRUE(cert_issue(tmp.path(), "n2").ok());
  Status s = cert_verify_files(tmp.file("ca.crt"), tmp.file("n1.crt"), tmp.file("n2.key"));
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_NE(s.message().find("is not the private key of"), std::string::npos) << s.message();
}

TEST(CertsTest, IssueWithoutCaIsNotFound) {
  TempDir tmp;
  Status s = cert_issue(tmp.path(), "n1");
  EXPECT_EQ(s.code(), Errc::kNotFound);
  EXPECT_NE(s.message().find("cert init"), std::string::npos) << s.message();
}

TEST(CertsTest, IssueRejectsBadNodeNames) {
  TempDir tmp;
  ASSERT_TRUE(cert_init(tmp.path(), "prod").ok());
  for (const char* bad : {"", "ca", "../n1", "n1.example", "-n1", "n 1", "n1/x"}) {
    EXPECT_EQ(cert_issue(tmp.path(), bad).code(), Errc::kInvalidArgument) << bad;
  }
  EXPECT_EQ(cert_issue(tmp.path(), std::string(64, 'a')).code(), Errc::kInvalidArgument);
  EXPECT_TRUE(cert_issue(tmp.path(), std::string(63, 'a')).ok());
  EXPECT_TRUE(cert_issue(tmp.path(), "Node-7").ok());
}

TEST(CertsTest, CaMismatchIsCorruption) {
  TempDir a, b;
  ASSERT_TRUE(cert_init(a.path(), "prod").ok());
  ASSERT_TRUE(cert_init(b.path(), "prod").ok());
  std::filesystem::copy_file(b.file("ca.key"), a.file("ca.key"),
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_EQ(cert_issue(a.path(), "n1").code(), Errc::kCorruption);
}

TEST(CertsTest, NodeNameOfCaCertificateIsRejected) {
  TempDir tmp;
  ASSERT_TRUE(cert_init(tmp.path(), "prod").ok());
  // The CA's CN "prod CA" contains a space: it is not a node name.
  auto name = cert_file_node_name(tmp.file("ca.crt"));
  ASSERT_FALSE(name.has_value());
  EXPECT_EQ(name.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(cert_file_node_name(tmp.file("missing.crt")).error().code(), Errc::kNotFound);
}

}  // namespace
}  // namespace vigil::net
