// Cluster PKI with the OpenSSL 3 C API: key generation, certificate signing, PEM files.
#include "net/certs.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <utility>
#include <vector>

#include "fmt/format.h"

namespace vigil::net {

namespace {

template <auto Fn>
struct Free {
  template <class T>
  void operator()(T* p) const {
    Fn(p);
  }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Free<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Free<BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Free<BN_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Free<X509_EXTENSION_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Free<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Free<X509_STORE_CTX_free>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, Free<GENERAL_NAMES_free>>;

constexpr size_t kMaxClusterNameBytes = 60;  // "<cluster> CA" must fit a 64-byte CN
constexpr long kBackdateSeconds = 3600;

// Drains OpenSSL's thread-local error queue into one line.
std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no OpenSSL error reported" : out;
}

Status ssl_fail(std::string_view what) {
  return Status(Errc::kInternal, fmt::format("{}: {}", what, openssl_errors()));
}

std::string errno_text(int e) { return std::strerror(e); }

bool file_exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

Status check_cluster_name(std::string_view name) {
  if (name.empty()) return Status(Errc::kInvalidArgument, "cluster name is empty");
  if (name.size() > kMaxClusterNameBytes) {
    return Status(Errc::kInvalidArgument, fmt::format("cluster name is {} bytes; the limit is {}",
                                                      name.size(), kMaxClusterNameBytes));
  }
  for (char c : name) {
    if (c < 0x20 || c > 0x7e) {
      return Status(Errc::kInvalidArgument,
                    fmt::format("cluster name contains byte 0x{:02x}; only printable ASCII "
                                "is allowed",
                                static_cast<unsigned char>(c)));
    }
  }
  return Status();
}

// Writes `data` to a temporary file next to `path` with `mode`, fsyncs it, then links it
// to `path`, which fails if `path` exists (no overwrite, even in a race).
Status write_new_file(const std::string& path, const std::string& data, mode_t mode) {
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    const int e = errno;
    return Status(Errc::kIoError, fmt::format("create {}: {}", tmp, errno_text(e)));
  }
  Status status;
  if (::fchmod(fd, mode) != 0) {
    status = Status(Errc::kIoError, fmt::format("chmod {}: {}", tmp, errno_text(errno)));
  }
  size_t done = 0;
  while (status.ok() && done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      status = Status(Errc::kIoError, fmt::format("write {}: {}", tmp, errno_text(errno)));
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (status.ok() && ::fsync(fd) != 0) {
    status = Status(Errc::kIoError, fmt::format("fsync {}: {}", tmp, errno_text(errno)));
  }
  if (::close(fd) != 0 && status.ok()) {
    status = Status(Errc::kIoError, fmt::format("close {}: {}", tmp, errno_text(errno)));
  }
  if (status.ok() && ::link(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    status = e == EEXIST ? Status(Errc::kAlreadyExists,
                                  fmt::format("{} already exists; refusing to overwrite it", path))
                         : Status(Errc::kIoError,
                                  fmt::format("link {} to {}: {}", tmp, path, errno_text(e)));
  }
  ::unlink(tmp.c_str());
  return status;
}

Status fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status(Errc::kIoError, fmt::format("open {}: {}", dir, errno_text(errno)));
  Status status;
  if (::fsync(fd) != 0) {
    status = Status(Errc::kIoError, fmt::format("fsync {}: {}", dir, errno_text(errno)));
  }
  ::close(fd);
  return status;
}

// Writes key then certificate; if the certificate cannot be written, removes the key so
// a retry starts clean.
Status write_pair(const std::string& key_path, const std::string& key_pem,
                  const std::string& crt_path, const std::string& crt_pem, const std::string& dir) {
  RETURN_IF_ERROR(write_new_file(key_path, key_pem, 0600));
  if (Status s = write_new_file(crt_path, crt_pem, 0644); !s.ok()) {
    ::unlink(key_path.c_str());
    return s;
  }
  return fsync_dir(dir);
}

Result<PkeyPtr> generate_key() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return ErrorValue{ssl_fail("generate ECDSA P-256 key")};
  return key;
}

Result<std::string> key_to_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return ErrorValue{ssl_fail("encode private key as PEM")};
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<std::string> cert_to_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return ErrorValue{ssl_fail("encode certificate as PEM")};
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Status add_name_entry(X509_NAME* name, const char* field, const std::string& value) {
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                 0) != 1) {
    return ssl_fail(fmt::format("set subject {}={}", field, value));
  }
  return Status();
}

Status add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return ssl_fail(fmt::format("add extension {}={}", OBJ_nid2sn(nid), value));
  }
  return Status();
}

// A certificate with a random serial, the given subject, validity and public key; not
// yet signed and without extensions.
Result<X509Ptr> new_cert(EVP_PKEY* key, const std::string& org_unit, const std::string& cn,
                         long validity_days, const ASN1_TIME* not_after_cap) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return ErrorValue{ssl_fail("create certificate")};
  }
  BnPtr serial(BN_new());
  if (!serial || BN_rand(serial.get(), 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return ErrorValue{ssl_fail("set serial number")};
  }
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kBackdateSeconds) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), static_cast<int>(validity_days), 0,
                       nullptr) == nullptr) {
    return ErrorValue{ssl_fail("set validity")};
  }
  if (not_after_cap != nullptr &&
      ASN1_TIME_compare(X509_get0_notAfter(cert.get()), not_after_cap) > 0) {
    if (X509_set1_notAfter(cert.get(), not_after_cap) != 1) {
      return ErrorValue{ssl_fail("cap validity at the CA's notAfter")};
    }
  }
  if (X509_set_pubkey(cert.get(), key) != 1) return ErrorValue{ssl_fail("set public key")};
  X509_NAME* subject = X509_get_subject_name(cert.get());
  RETURN_IF_ERROR(add_name_entry(subject, "O", "vigil"));
  if (!org_unit.empty()) RETURN_IF_ERROR(add_name_entry(subject, "OU", org_unit));
  RETURN_IF_ERROR(add_name_entry(subject, "CN", cn));
  return cert;
}

// Opens a PEM file for reading. Errors: kNotFound, kIoError ("open PATH: reason").
Result<BioPtr> open_pem(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    const int e = errno;
    return err(e == ENOENT ? Errc::kNotFound : Errc::kIoError,
               fmt::format("open {}: {}", path, errno_text(e)));
  }
  return bio;
}

Result<X509Ptr> read_cert(const std::string& path) {
  ASSIGN_OR_RETURN(BioPtr bio, open_pem(path));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return err(Errc::kInvalidArgument,
               fmt::format("{}: not a PEM certificate ({})", path, openssl_errors()));
  }
  return cert;
}

Result<PkeyPtr> read_key(const std::string& path) {
  ASSIGN_OR_RETURN(BioPtr bio, open_pem(path));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return err(Errc::kInvalidArgument,
               fmt::format("{}: not a PEM private key ({})", path, openssl_errors()));
  }
  return key;
}

// The UTF-8 text of the only entry `nid` in `name`, or an error.
Result<std::string> single_name_entry(const X509_NAME* name, int nid, std::string_view what) {
  const int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0) return err(Errc::kInvalidArgument, fmt::format("certificate has no {}", what));
  if (X509_NAME_get_index_by_NID(name, nid, idx) >= 0) {
    return err(Errc::kInvalidArgument, fmt::format("certificate has more than one {}", what));
  }
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0) {
    return err(Errc::kInvalidArgument,
               fmt::format("certificate {} is not valid text ({})", what, openssl_errors()));
  }
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

std::string join_path(const std::string& dir, const std::string& file) {
  return (std::filesystem::path(dir) / file).string();
}

}  // namespace

Status valid_node_name(std::string_view name) {
  if (name.empty()) return Status(Errc::kInvalidArgument, "node name is empty");
  if (name.size() > 63) {
    return Status(
        Errc::kInvalidArgument,
        fmt::format("node name '{}' is {} characters; the limit is 63", name, name.size()));
  }
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name.front())) {
    return Status(Errc::kInvalidArgument,
                  fmt::format("node name '{}' must start with a letter or digit", name));
  }
  for (char c : name) {
    if (!alnum(c) && c != '-') {
      return Status(Errc::kInvalidArgument,
                    fmt::format("node name '{}' contains '{}'; allowed are letters, digits "
                                "and '-'",
                                name, c));
    }
  }
  if (name == "ca") {
    return Status(Errc::kInvalidArgument, "node name 'ca' is reserved for the CA files");
  }
  return Status();
}

Status cert_init(const std::string& dir, const std::string& cluster_name) {
  RETURN_IF_ERROR(check_cluster_name(cluster_name).with_context("cert init"));
  const std::string key_path = join_path(dir, "ca.key");
  const std::string crt_path = join_path(dir, "ca.crt");
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status(Errc::kIoError, fmt::format("cert init: mkdir {}: {}", dir, errno_text(errno)));
    }
  }
  for (const auto& p : {key_path, crt_path}) {
    if (file_exists(p)) {
      return Status(Errc::kAlreadyExists,
                    fmt::format("cert init: {} already exists; refusing to overwrite the "
                                "cluster CA (remove it first to start a new cluster PKI)",
                                p));
    }
  }
  ERR_clear_error();
  ASSIGN_OR_RETURN(PkeyPtr key, generate_key());
  ASSIGN_OR_RETURN(X509Ptr cert, new_cert(key.get(), cluster_name, cluster_name + " CA",
                                          kCaValidityDays, nullptr));
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) != 1) {
    return ssl_fail("set issuer");
  }
  RETURN_IF_ERROR(
      add_ext(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  RETURN_IF_ERROR(add_ext(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  RETURN_IF_ERROR(add_ext(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(add_ext(cert.get(), cert.get(), NID_authority_key_identifier, "keyid:always"));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) return ssl_fail("sign CA certificate");
  ASSIGN_OR_RETURN(std::string key_pem, key_to_pem(key.get()));
  ASSIGN_OR_RETURN(std::string crt_pem, cert_to_pem(cert.get()));
  return write_pair(key_path, key_pem, crt_path, crt_pem, dir).with_context("cert init");
}

Status cert_issue(const std::string& dir, const std::string& node_name) {
  RETURN_IF_ERROR(valid_node_name(node_name).with_context("cert issue"));
  const std::string ca_key_path = join_path(dir, "ca.key");
  const std::string ca_crt_path = join_path(dir, "ca.crt");
  const std::string key_path = join_path(dir, node_name + ".key");
  const std::string crt_path = join_path(dir, node_name + ".crt");
  ERR_clear_error();
  auto ca_cert = read_cert(ca_crt_path);
  if (!ca_cert) {
    Status s = ca_cert.error();
    if (s.code() == Errc::kNotFound) {
      return Status(Errc::kNotFound, fmt::format("cert issue: no CA certificate {}; create the "
                                                 "cluster CA first (cert init)",
                                                 ca_crt_path));
    }
    return s.with_context("cert issue");
  }
  auto ca_key = read_key(ca_key_path);
  if (!ca_key) return ca_key.error().with_context("cert issue");
  if (X509_check_private_key(ca_cert->get(), ca_key->get()) != 1) {
    ERR_clear_error();
    return Status(Errc::kCorruption,
                  fmt::format("cert issue: {} is not the key of {}", ca_key_path, ca_crt_path));
  }
  for (const auto& p : {key_path, crt_path}) {
    if (file_exists(p)) {
      return Status(Errc::kAlreadyExists,
                    fmt::format("cert issue: {} already exists; refusing to overwrite it", p));
    }
  }
  // The CA's OU is the cluster name; copy it so a node certificate says its cluster.
  std::string cluster;
  if (auto ou = single_name_entry(X509_get_subject_name(ca_cert->get()), NID_organizationalUnitName,
                                  "OU")) {
    cluster = *ou;
  }
  ASSIGN_OR_RETURN(PkeyPtr key, generate_key());
  ASSIGN_OR_RETURN(X509Ptr cert, new_cert(key.get(), cluster, node_name, kNodeValidityDays,
                                          X509_get0_notAfter(ca_cert->get())));
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert->get())) != 1) {
    return ssl_fail("set issuer");
  }
  X509* issuer = ca_cert->get();
  RETURN_IF_ERROR(add_ext(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(add_ext(cert.get(), issuer, NID_key_usage, "critical,digitalSignature"));
  RETURN_IF_ERROR(add_ext(cert.get(), issuer, NID_ext_key_usage, "serverAuth,clientAuth"));
  RETURN_IF_ERROR(add_ext(cert.get(), issuer, NID_subject_alt_name, "DNS:" + node_name));
  RETURN_IF_ERROR(add_ext(cert.get(), issuer, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(add_ext(cert.get(), issuer, NID_authority_key_identifier, "keyid:always"));
  if (X509_sign(cert.get(), ca_key->get(), EVP_sha256()) <= 0) {
    return ssl_fail("sign node certificate");
  }
  ASSIGN_OR_RETURN(std::string key_pem, key_to_pem(key.get()));
  ASSIGN_OR_RETURN(std::string crt_pem, cert_to_pem(cert.get()));
  return write_pair(key_path, key_pem, crt_path, crt_pem, dir).with_context("cert issue");
}

Result<std::string> cert_node_name(const x509_st* cert) {
  if (cert == nullptr) return err(Errc::kInvalidArgument, "no certificate");
  ASSIGN_OR_RETURN(std::string cn,
                   single_name_entry(X509_get_subject_name(cert), NID_commonName, "CN"));
  if (cn.find('\0') != std::string::npos) {
    return err(Errc::kInvalidArgument, "certificate CN contains a NUL byte");
  }
  if (Status s = valid_node_name(cn); !s.ok()) {
    return err(Errc::kInvalidArgument, "certificate CN: " + s.message());
  }
  NamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (names) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
      if (gn->type != GEN_DNS) continue;
      const ASN1_IA5STRING* dns = gn->d.dNSName;
      std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                        static_cast<size_t>(ASN1_STRING_length(dns)));
      if (value != cn) {
        return err(
            Errc::kInvalidArgument,
            fmt::format("certificate subjectAltName DNS:{} differs from its CN '{}'", value, cn));
      }
    }
  }
  return cn;
}

Result<std::string> cert_file_node_name(const std::string& cert_path) {
  ERR_clear_error();
  ASSIGN_OR_RETURN(X509Ptr cert, read_cert(cert_path));
  auto name = cert_node_name(cert.get());
  if (!name) return std::unexpected(name.error().with_context(cert_path));
  return name;
}

Status cert_verify_files(const std::string& ca_path, const std::string& cert_path,
                         const std::string& key_path) {
  ERR_clear_error();
  ASSIGN_OR_RETURN(X509Ptr ca, read_cert(ca_path));
  ASSIGN_OR_RETURN(X509Ptr cert, read_cert(cert_path));
  ASSIGN_OR_RETURN(PkeyPtr key, read_key(key_path));
  StorePtr store(X509_STORE_new());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca.get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) {
    return ssl_fail("set up certificate verification");
  }
  // Each node is a TLS server to its peers' dialers and a TLS client of its peers.
  for (int purpose : {X509_PURPOSE_SSL_SERVER, X509_PURPOSE_SSL_CLIENT}) {
    X509_STORE_CTX_set_purpose(ctx.get(), purpose);
    if (X509_verify_cert(ctx.get()) != 1) {
      const int code = X509_STORE_CTX_get_error(ctx.get());
      ERR_clear_error();
      return Status(Errc::kInvalidArgument,
                    fmt::format("{} does not verify against CA {}: {}", cert_path, ca_path,
                                X509_verify_cert_error_string(code)));
    }
    X509_STORE_CTX_cleanup(ctx.get());
    if (X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) {
      return ssl_fail("set up certificate verification");
    }
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return Status(Errc::kInvalidArgument,
                  fmt::format("{} is not the private key of {}", key_path, cert_path));
  }
  return Status();
}

}  // namespace vigil::net
