// Cluster PKI: create the cluster CA, issue node certificates, read node names from them.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

// OpenSSL's X509 (from <openssl/ossl_typ.h>), declared here so callers need no OpenSSL.
struct x509_st;

namespace vigil::net {

// Every node of a cluster holds ca.crt, its own <node>.crt and <node>.key; the transport
// (transport.h) accepts a peer only if its certificate chains to ca.crt and names exactly
// the node it claims to be. ca.key stays with the operator (it signs new nodes).
//
// Algorithms: ECDSA P-256 keys, SHA-256 signatures, X.509 v3, random 159-bit serials.
// CA: subject O=vigil, OU=<cluster>, CN=<cluster> CA; basicConstraints critical CA:TRUE,
//     pathlen:0; keyUsage critical keyCertSign, cRLSign; 10 years.
// Node: subject O=vigil, OU=<cluster>, CN=<node>; subjectAltName DNS:<node>;
//     basicConstraints critical CA:FALSE; keyUsage critical digitalSignature;
//     extendedKeyUsage serverAuth, clientAuth (each node is both a TLS client and server);
//     10 years, but never past the CA's own expiry.
// Both notBefore dates are set one hour back, to tolerate clock skew between nodes.
// Key files are written 0600, certificates 0644; every file is written to a temporary
// name, fsynced, then linked into place, so an existing file is never overwritten and a
// crash leaves no half-written key behind.

// Validity periods, exposed for tests and docs.
inline constexpr long kCaValidityDays = 3653;    // 10 years
inline constexpr long kNodeValidityDays = 3653;  // 10 years, capped at the CA's notAfter

// Creates `dir` (0700) if needed, then dir/ca.key and dir/ca.crt for `cluster_name`.
// Errors: kInvalidArgument (cluster name empty, longer than 60 bytes or not printable
// ASCII), kAlreadyExists (ca.key or ca.crt exists: nothing is overwritten), kIoError,
// kInternal (an OpenSSL call failed; its error queue is in the message).
Status cert_init(const std::string& dir, const std::string& cluster_name);

// Writes dir/<node_name>.key and dir/<node_name>.crt, signed by dir/ca.key + dir/ca.crt.
// Errors: kInvalidArgument (bad node name, see valid_node_name), kNotFound (no CA in dir),
// kAlreadyExists (either node file exists), kCorruption (ca.key does not match ca.crt or
// cannot be parsed), kIoError, kInternal.
Status cert_issue(const std::string& dir, const std::string& node_name);

// Node names are DNS labels and file names: 1–63 characters from [a-z0-9-] plus
// upper-case letters, starting with a letter or digit; "ca" is reserved for the CA files.
Status valid_node_name(std::string_view node_name);

// The node name a certificate was issued for: its subject CN, which must be a valid node
// name, occur exactly once, and — when the certificate has DNS subjectAltNames — be the
// only DNS name in it (a certificate naming two nodes could impersonate either).
// Does NOT check the signature chain; TLS verification does that.
// Errors: kInvalidArgument naming what is wrong.
Result<std::string> cert_node_name(const x509_st* cert);

// cert_node_name of the first certificate in a PEM file.
Result<std::string> cert_file_node_name(const std::string& cert_path);

// Checks that `cert_path` chains to `ca_path` (valid now, EKU allows TLS client and
// server use) and that `key_path` holds the certificate's private key. For start-up and
// `--check-config`, so a misconfiguration is reported by file rather than as a failed
// TLS handshake later. Errors: kNotFound, kInvalidArgument (which check failed and why).
Status cert_verify_files(const std::string& ca_path, const std::string& cert_path,
                         const std::string& key_path);

}  // namespace vigil::net
