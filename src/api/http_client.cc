// HttpClient implementation: Beast async operations on a private io_context, run with a
// deadline so a hung server cannot block the caller forever; HTTPS through Asio's OpenSSL.
// clang-format off
#include <utility>  // Boost 1.74 asio misses this include under g++ 12: first
// clang-format on

#include "api/http_client.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

namespace vigil::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

namespace {

// The subject CN of a certificate ("" if none), for messages.
std::string common_name(X509* cert) {
  char buf[256] = {};
  if (cert == nullptr) return "";
  X509_NAME* name = X509_get_subject_name(cert);
  const int n = X509_NAME_get_text_by_NID(name, NID_commonName, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

}  // namespace

Result<ApiEndpoint> parse_api_url(std::string_view url) {
  ApiEndpoint out;
  std::string_view rest = url;
  if (rest.starts_with("https://")) {
    out.tls = true;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.find("://") != std::string_view::npos) {
    return err(Errc::kInvalidArgument,
               "API address '" + std::string(url) + "': only http:// and https:// are known");
  }
  if (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) {
    return err(Errc::kInvalidArgument,
               "API address '" + std::string(url) + "': want [https://]HOST:PORT, without a path");
  }
  ASSIGN_OR_RETURN(auto hp, split_host_port(rest));
  (void)hp;
  out.host_port = std::string(rest);
  return out;
}

class HttpClient::Impl {
 public:
  asio::io_context io;
  std::unique_ptr<ssl::context> tls_ctx;
  std::optional<beast::tcp_stream> plain;
  std::optional<TlsStream> tls;
  beast::flat_buffer buffer;
  // What the last handshake's verification saw, for its error message.
  std::string peer_name;
  std::string chain_error;
  bool name_mismatch = false;

  bool connected() const { return plain.has_value() || tls.has_value(); }
  void reset() {
    plain.reset();
    tls.reset();
    buffer.clear();
  }
};

HttpClient::HttpClient(std::string host_port, HttpClientOptions options)
    : host_port_(std::move(host_port)),
      options_(std::move(options)),
      impl_(std::make_unique<Impl>()) {}
HttpClient::~HttpClient() = default;

Result<HttpResponse> HttpClient::request(const std::string& method, const std::string& target,
                                         const std::string& body, int timeout_ms,
                                         const std::string& content_type) {
  return exchange(method, target, body, timeout_ms, content_type, nullptr);
}

Result<HttpResponse> HttpClient::stream(const std::string& target, const DataFn& on_data,
                                        int timeout_ms) {
  return exchange("GET", target, "", timeout_ms, "application/json", &on_data);
}

Result<HttpResponse> HttpClient::stream(const std::string& method, const std::string& target,
                                        const std::string& body, const DataFn& on_data,
                                        int timeout_ms) {
  return exchange(method, target, body, timeout_ms, "application/json", &on_data);
}

Result<HttpResponse> HttpClient::exchange(const std::string& method, const std::string& target,
                                          const std::string& body, int timeout_ms,
                                          const std::string& content_type, const DataFn* on_data) {
  ASSIGN_OR_RETURN(auto hp, split_host_port(host_port_));
  Impl& d = *impl_;
  auto deadline = std::chrono::milliseconds(timeout_ms);
  if (options_.tls && !d.tls_ctx) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    beast::error_code ec;
    if (options_.ca_file.empty()) {
      ctx->set_default_verify_paths(ec);
    } else {
      ctx->load_verify_file(options_.ca_file, ec);
    }
    if (ec) {
      return err(Errc::kInvalidArgument,
                 "CA file " + (options_.ca_file.empty() ? "(system default)" : options_.ca_file) +
                     ": cannot load (" + ec.message() + ")");
    }
    d.tls_ctx = std::move(ctx);
  }
  const std::string expected_name = options_.server_name.empty() ? hp.first : options_.server_name;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool fresh = !d.connected();
    beast::error_code ec;
    if (fresh) {
      beast::tcp_stream tcp_stream(d.io);
      auto addr = asio::ip::make_address(hp.first, ec);
      if (ec) return err(Errc::kInvalidArgument, "address " + host_port_ + ": " + ec.message());
      d.io.restart();
      bool done = false;
      tcp_stream.async_connect(tcp::endpoint(addr, hp.second), [&](beast::error_code e) {
        ec = e;
        done = true;
      });
      d.io.run_for(deadline);
      if (!done) {
        d.io.restart();
        d.io.poll();
        return err(Errc::kTimeout, "connect " + host_port_ + ": timed out");
      }
      if (ec) return err(Errc::kUnavailable, "connect " + host_port_ + ": " + ec.message());
      beast::error_code ignored;
      tcp_stream.socket().set_option(tcp::no_delay(true), ignored);
      if (!options_.tls) {
        d.plain.emplace(std::move(tcp_stream));
      } else {
        d.tls.emplace(std::move(tcp_stream), *d.tls_ctx);
        beast::error_code parsed;
        asio::ip::make_address(expected_name, parsed);
        if (parsed) {  // a DNS name: send it as SNI (RFC 6066 §3)
          SSL_set_tlsext_host_name(d.tls->native_handle(), expected_name.c_str());
        }
        d.peer_name.clear();
        d.chain_error.clear();
        d.name_mismatch = false;
        d.tls->set_verify_mode(ssl::verify_peer);
        ssl::host_name_verification check_name(expected_name);
        const bool skip = options_.skip_host_check;
        d.tls->set_verify_callback(
            [&d, check_name, skip](bool preverified, ssl::verify_context& vc) mutable {
              X509_STORE_CTX* store = vc.native_handle();
              if (X509_STORE_CTX_get_error_depth(store) == 0) {
                d.peer_name = common_name(X509_STORE_CTX_get_current_cert(store));
              }
              if (!preverified) {
                d.chain_error = X509_verify_cert_error_string(X509_STORE_CTX_get_error(store));
                return false;
              }
              if (skip || X509_STORE_CTX_get_error_depth(store) > 0) return true;
              if (!check_name(true, vc)) {
                d.name_mismatch = true;
                return false;
              }
              return true;
            });
        d.io.restart();
        done = false;
        d.tls->async_handshake(ssl::stream_base::client, [&](beast::error_code e) {
          ec = e;
          done = true;
        });
        d.io.run_for(deadline);
        if (!done || ec) {
          d.reset();
          d.io.restart();
          d.io.poll();
          if (!done) return err(Errc::kTimeout, "TLS handshake with " + host_port_ + ": timed out");
          std::string why;
          if (d.name_mismatch) {
            why = "the server's certificate is for \"" + d.peer_name + "\", not \"" +
                  expected_name + "\" (set the name to expect, or skip the host check)";
          } else if (!d.chain_error.empty()) {
            why = "the server's certificate (\"" + d.peer_name +
                  "\") is not trusted: " + d.chain_error +
                  (options_.ca_file.empty() ? "" : " (CA file " + options_.ca_file + ")");
          } else {
            why = ec.message() + " (is it a plain HTTP port? then use http://)";
          }
          return err(Errc::kUnavailable, "TLS handshake with " + host_port_ + ": " + why);
        }
      }
    }
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, host_port_);
    req.set(http::field::user_agent, "vigil");
    if (!options_.bearer_token.empty()) {
      req.set(http::field::authorization, "Bearer " + options_.bearer_token);
    }
    if (!body.empty()) req.set(http::field::content_type, content_type);
    req.body() = body;
    req.keep_alive(true);
    req.prepare_payload();
    http::response_parser<http::string_body> parser;
    parser.body_limit(256ull << 20);
    bool stopped = false;
    // Beast keeps a reference to the callback: it must outlive the read.
    auto chunk_cb = [&](uint64_t, beast::string_view data, beast::error_code& e) {
      if (!(*on_data)(std::string_view(data.data(), data.size()))) {
        stopped = true;
        e = asio::error::operation_aborted;
      }
      return data.size();
    };
    if (on_data) {
      parser.body_limit(boost::none);  // chunks are handed on, not accumulated
      parser.on_chunk_body(chunk_cb);
    }
    bool done = false;
    d.io.restart();
    auto exchange = [&](auto& stream) {
      http::async_write(stream, req, [&](beast::error_code e, size_t) {
        if (e) {
          ec = e;
          done = true;
          return;
        }
        http::async_read(stream, d.buffer, parser, [&](beast::error_code e2, size_t) {
          ec = e2;
          done = true;
        });
      });
    };
    if (d.tls) {
      exchange(*d.tls);
    } else {
      exchange(*d.plain);
    }
    d.io.run_for(deadline);
    if (on_data && (stopped || (!done && parser.is_header_done()))) {
      // The stream ran its time or the caller stopped it: not an error.
      HttpResponse out;
      out.status = static_cast<int>(parser.get().result_int());
      d.reset();
      d.io.restart();
      d.io.poll();
      return out;
    }
    if (!done) {
      d.reset();  // closes the socket; the next request reconnects
      d.io.restart();
      d.io.poll();
      return err(Errc::kTimeout, method + " " + target + " on " + host_port_ +
                                     ": no response within " + std::to_string(timeout_ms) + " ms");
    }
    if (ec) {
      d.reset();
      // A kept-alive connection the server closed: retry once on a fresh one.
      if (!fresh) continue;
      return err(Errc::kUnavailable,
                 method + " " + target + " on " + host_port_ + ": " + ec.message());
    }
    auto res = parser.release();
    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    out.content_type = std::string(res[http::field::content_type]);
    out.body = std::move(res.body());
    for (const auto& f : res) {
      if (f.name() == http::field::www_authenticate) {
        out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
      }
    }
    if (!res.keep_alive()) d.reset();
    return out;
  }
  return err(Errc::kUnavailable, "request to " + host_port_ + " failed");
}

}  // namespace vigil::api
