// Agent config: YAML text → validated AgentConfig with located errors; AgentConfig → YAML.
#include "daemon/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <sstream>
#include <utility>

namespace vigil::daemon {
namespace {

constexpr std::string_view kTopKeys[] = {
    "node", "id",     "cluster", "data_dir",         "listen",    "peers",          "tls",
    "api",  "timers", "fsync",   "snapshot_entries", "log_level", "event_retention"};
constexpr std::string_view kListenKeys[] = {"peer", "api"};
constexpr std::string_view kPeerKeys[] = {"name", "id", "peer", "api"};
constexpr std::string_view kTlsKeys[] = {"insecure", "ca", "cert", "key"};
constexpr std::string_view kApiKeys[] = {"tls", "tokens"};
constexpr std::string_view kApiTlsKeys[] = {"cert", "key"};
constexpr std::string_view kApiTokenKeys[] = {"name", "role", "token_file"};
constexpr std::string_view kApiRoles[] = {"read-only", "read-write", "admin"};
constexpr std::string_view kTimerKeys[] = {"tick_ms", "heartbeat_ms",  "election_timeout_ms",
                                           "hold_ms", "hold_guard_ms", "clock_drift"};
constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error"};

constexpr size_t kMaxPathBytes = 4095;
constexpr size_t kMaxShownBytes = 40;

// A value from the file, quoted for a message: printable ASCII only, cut at 40 bytes.
std::string show(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == kMaxShownBytes) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  out += '"';
  return out;
}

bool is_quoted(const YAML::Node& n) { return n.Tag() == "!"; }

// What a node is, for "(got ...)".
std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar:
      return (is_quoted(n) ? "quoted string " : "") + show(n.Scalar());
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// 1-based line of a node, 0 when yaml-cpp does not know it.
int line_of(const YAML::Node& n) {
  const int line = n.Mark().line;
  return line >= 0 ? line + 1 : 0;
}

std::string join_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) {
    return std::string(key);
  }
  std::string out(parent);
  out += '.';
  out += key;
  return out;
}

template <class Range>
std::string join_words(const Range& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) {
      out += ", ";
    }
    out += w;
  }
  return out;
}

// Collects located errors; rendered sorted by line, capped at kMaxConfigErrors.
class Errors {
 public:
  explicit Errors(std::string_view file) : file_(file) {}

  void add(int line, std::string_view path, std::string message) {
    std::string text = file_;
    if (line > 0) {
      text += ':' + std::to_string(line);
    }
    text += ": ";
    if (!path.empty()) {
      text += path;
      text += ": ";
    }
    text += message;
    issues_.push_back({line, std::move(text)});
  }
  bool empty() const { return issues_.empty(); }

  Status status() {
    std::stable_sort(issues_.begin(), issues_.end(),
                     [](const Issue& a, const Issue& b) { return a.line < b.line; });
    std::string out;
    for (size_t i = 0; i < issues_.size() && i < kMaxConfigErrors; ++i) {
      if (i > 0) {
        out += '\n';
      }
      out += issues_[i].text;
    }
    if (issues_.size() > kMaxConfigErrors) {
      out += "\n" + file_ + ": ... and " + std::to_string(issues_.size() - kMaxConfigErrors) +
             " more errors";
    }
    return Status(Errc::kInvalidArgument, std::move(out));
  }

 private:
  struct Issue {
    int line;
    std::string text;
  };
  std::string file_;
  std::vector<Issue> issues_;
};

struct Entry {
  YAML::Node value;
  int line = 0;  // the key's line
  std::string path;
};
using Fields = std::map<std::string, Entry, std::less<>>;

// Checks that `node` is a map holding only `known` keys, each at most once.
std::optional<Fields> read_map(const YAML::Node& node, int line, std::string_view path,
                               std::span<const std::string_view> known, Errors& errors) {
  if (!node.IsMap()) {
    if (path.empty()) {
      errors.add(line, path,
                 "the file must be a map of settings, like \"node: n1\" (got " + describe(node) +
                     "); see docs/CONFIG.md");
    } else {
      errors.add(line, path, "must be a map (got " + describe(node) + ")");
    }
    return std::nullopt;
  }
  Fields fields;
  for (auto it = node.begin(); it != node.end(); ++it) {
    // A copy: yaml-cpp's iterator hands out a temporary pair, so a reference would dangle.
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    const int key_line = line_of(key) > 0 ? line_of(key) : line;
    if (!key.IsScalar()) {
      errors.add(key_line, path, "keys must be plain words (got " + describe(key) + ")");
      continue;
    }
    const std::string& name = key.Scalar();
    std::string key_path = join_path(path, name);
    if (std::find(std::begin(known), std::end(known), name) == std::end(known)) {
      const bool plain =
          !name.empty() && name.size() <= kMaxShownBytes &&
          std::all_of(name.begin(), name.end(), [](char ch) {
            return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-';
          });
      errors.add(key_line, join_path(path, plain ? name : show(name)),
                 "unknown key (known keys: " + join_words(known) + ")");
      continue;
    }
    if (auto prev = fields.find(name); prev != fields.end()) {
      errors.add(key_line, key_path,
                 "duplicate key (first at line " + std::to_string(prev->second.line) + ")");
      continue;
    }
    fields.emplace(name, Entry{value, key_line, std::move(key_path)});
  }
  return fields;
}

const Entry* find(const Fields& fields, std::string_view key) {
  auto it = fields.find(key);
  return it == fields.end() ? nullptr : &it->second;
}

// Like find(), but a missing key is an error reported at the map's line.
const Entry* require(const Fields& fields, std::string_view key, int map_line,
                     std::string_view map_path, Errors& errors) {
  const Entry* e = find(fields, key);
  if (e == nullptr) {
    errors.add(map_line, join_path(map_path, key), "required key is missing");
  }
  return e;
}

std::optional<std::string> as_string(const Entry& e, Errors& errors) {
  if (!e.value.IsScalar()) {
    errors.add(e.line, e.path, "must be a string (got " + describe(e.value) + ")");
    return std::nullopt;
  }
  return e.value.Scalar();
}

std::optional<uint64_t> as_uint(const Entry& e, uint64_t lo, uint64_t hi, Errors& errors) {
  const std::string& s = e.value.IsScalar() ? e.value.Scalar() : std::string();
  uint64_t v = 0;
  const char* end = s.data() + s.size();
  const bool digits =
      !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!e.value.IsScalar() || is_quoted(e.value) || !digits) {
    errors.add(e.line, e.path, "must be a whole number (got " + describe(e.value) + ")");
    return std::nullopt;
  }
  auto [ptr, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || ptr != end || v < lo || v > hi) {
    errors.add(e.line, e.path,
               "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + " (got " +
                   s + ")");
    return std::nullopt;
  }
  return v;
}

std::optional<bool> as_bool(const Entry& e, Errors& errors) {
  if (e.value.IsScalar() && !is_quoted(e.value)) {
    if (e.value.Scalar() == "true") {
      return true;
    }
    if (e.value.Scalar() == "false") {
      return false;
    }
  }
  errors.add(e.line, e.path, "must be true or false (got " + describe(e.value) + ")");
  return std::nullopt;
}

std::optional<double> as_double(const Entry& e, double lo, double hi, std::string_view range,
                                Errors& errors) {
  const std::string& s = e.value.IsScalar() ? e.value.Scalar() : std::string();
  double v = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, v, std::chars_format::fixed);
  if (!e.value.IsScalar() || is_quoted(e.value) || s.empty() || ec != std::errc() || ptr != end ||
      !std::isfinite(v)) {
    errors.add(e.line, e.path, "must be a number (got " + describe(e.value) + ")");
    return std::nullopt;
  }
  if (v < lo || v > hi) {
    errors.add(e.line, e.path, "must be between " + std::string(range) + " (got " + s + ")");
    return std::nullopt;
  }
  return v;
}

std::optional<std::string> as_name(const Entry& e, Errors& errors) {
  auto s = as_string(e, errors);
  if (s && !is_valid_name(*s)) {
    errors.add(e.line, e.path,
               "must be 1 to 63 characters of a-z, 0-9 and '-', starting and ending with a "
               "letter or digit (got " +
                   show(*s) + ")");
    return std::nullopt;
  }
  return s;
}

// Valid UTF-8 without control characters (a path with them is a mistake, not a wish).
bool printable_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) {
        return false;
      }
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) {
      return false;
    }
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (cc & 0x3f);
    }
    constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
        (cp >= 0x80 && cp < 0xa0)) {
      return false;
    }
    i += len;
  }
  return true;
}

// Node names also name certificate files, where "ca" is the cluster CA's (net/certs.h).
std::optional<std::string> as_node_name(const Entry& e, Errors& errors) {
  auto s = as_name(e, errors);
  if (s && *s == "ca") {
    errors.add(e.line, e.path, "\"ca\" is reserved for the cluster CA's files; pick another name");
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> as_abs_path(const Entry& e, Errors& errors) {
  auto s = as_string(e, errors);
  if (!s) {
    return s;
  }
  if (s->empty() || s->front() != '/' || s->size() > kMaxPathBytes) {
    errors.add(e.line, e.path, "must be an absolute path (got " + show(*s) + ")");
    return std::nullopt;
  }
  if (!printable_utf8(*s)) {
    errors.add(e.line, e.path, "must hold only printable UTF-8 characters (got " + show(*s) + ")");
    return std::nullopt;
  }
  return s;
}

std::optional<HostPort> as_host_port(const Entry& e, bool allow_wildcard, Errors& errors) {
  auto s = as_string(e, errors);
  if (!s) {
    return std::nullopt;
  }
  auto hp = parse_host_port(*s);
  if (!hp) {
    errors.add(e.line, e.path, hp.error().message() + " (got " + show(*s) + ")");
    return std::nullopt;
  }
  if (!allow_wildcard && hp->is_wildcard()) {
    errors.add(e.line, e.path,
               "must be an address other nodes can dial, not the wildcard (got " + show(*s) + ")");
    return std::nullopt;
  }
  return *hp;
}

bool valid_hostname(std::string_view s) {
  if (s.empty() || s.size() > 253) {
    return false;
  }
  size_t start = 0;
  while (start <= s.size()) {
    size_t dot = s.find('.', start);
    if (dot == std::string_view::npos) {
      dot = s.size();
    }
    std::string_view label = s.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      const bool ok =
          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) {
        return false;
      }
    }
    start = dot + 1;
  }
  return true;
}

// Reads a regular file's readability without reading it; "" when fine, else the reason.
std::string check_readable(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return std::strerror(errno);
  }
  struct stat st {};
  std::string reason;
  if (::fstat(fd, &st) != 0) {
    reason = std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    reason = "not a regular file";
  }
  ::close(fd);
  return reason;
}

// Characters a token may hold: RFC 6750 §2.1's b64token, so it fits the header as is.
bool token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
}

struct TokenFile {
  std::string token;
  mode_t mode = 0;
};

// Reads and checks a token file (read_api_token_file's contract), also returning its mode.
Result<TokenFile> read_token_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    return err(e == ENOENT ? Errc::kNotFound : Errc::kIoError, std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int e = errno;
    ::close(fd);
    return err(Errc::kInvalidArgument,
               S_ISREG(st.st_mode) ? std::strerror(e) : "not a regular file");
  }
  TokenFile out;
  out.mode = st.st_mode & 07777;
  std::string text;
  char buf[kMaxApiTokenChars + 3];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return err(Errc::kIoError, std::strerror(e));
    }
    if (n == 0) {
      break;
    }
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxApiTokenChars + 2) {
      break;
    }
  }
  ::close(fd);
  if (text.ends_with("\r\n")) {
    text.resize(text.size() - 2);
  } else if (text.ends_with('\n')) {
    text.pop_back();
  }
  if (text.empty()) {
    return err(Errc::kInvalidArgument, "the file is empty; write one token of at least " +
                                           std::to_string(kMinApiTokenChars) +
                                           " characters into it (openssl rand -hex 32 makes one)");
  }
  if (text.size() > kMaxApiTokenChars) {
    return err(Errc::kInvalidArgument, "must hold one token of at most " +
                                           std::to_string(kMaxApiTokenChars) + " characters");
  }
  if (text.find('\n') != std::string::npos) {
    return err(Errc::kInvalidArgument, "must hold one token on one line (got several lines)");
  }
  for (size_t i = 0; i < text.size(); ++i) {
    if (!token_char(text[i])) {
      // The position only: the file's content is a secret and stays out of logs.
      return err(Errc::kInvalidArgument,
                 "character " + std::to_string(i + 1) +
                     " is not allowed in a token (allowed: A-Z a-z 0-9 - . _ ~ + / =)");
    }
  }
  if (text.size() < kMinApiTokenChars) {
    return err(Errc::kInvalidArgument, "the token has " + std::to_string(text.size()) +
                                           " characters; at least " +
                                           std::to_string(kMinApiTokenChars) +
                                           " are needed (openssl rand -hex 32 makes one)");
  }
  out.token = std::move(text);
  return out;
}

// Counts the documents of a YAML stream and notes where the second one starts.
class DocumentCounter final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents == 2) {
      second_line = mark.line >= 0 ? mark.line + 1 : 0;
    }
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  int documents = 0;
  int second_line = 0;
};

// Where each accepted peer entry came from, for cross-checks.
struct PeerSource {
  size_t index;
  int name_line, id_line, peer_line, api_line;
};

std::string peer_path(size_t i) { return "peers[" + std::to_string(i) + "]"; }

void check_peers_unique(const std::vector<PeerConfig>& peers, const std::vector<PeerSource>& src,
                        Errors& errors) {
  struct Endpoint {
    std::string where;
    int line;
  };
  std::map<std::string, Endpoint> names, ids, addrs;
  for (size_t k = 0; k < peers.size(); ++k) {
    const PeerConfig& p = peers[k];
    const std::string path = peer_path(src[k].index);
    if (auto [it, fresh] = names.try_emplace(p.name, Endpoint{path, src[k].name_line}); !fresh) {
      errors.add(src[k].name_line, path + ".name",
                 "duplicate name " + show(p.name) + " (also " + it->second.where + ", line " +
                     std::to_string(it->second.line) + ")");
    }
    if (auto [it, fresh] = ids.try_emplace(p.id.str(), Endpoint{path, src[k].id_line}); !fresh) {
      errors.add(src[k].id_line, path + ".id",
                 "duplicate id " + p.id.str() + " (also " + it->second.where + ", line " +
                     std::to_string(it->second.line) + ")");
    }
    const std::pair<const HostPort*, std::pair<const char*, int>> eps[] = {
        {&p.peer, {"peer", src[k].peer_line}}, {&p.api, {"api", src[k].api_line}}};
    for (const auto& [hp, what] : eps) {
      const std::string where = path + "." + what.first;
      auto [it, fresh] = addrs.try_emplace(hp->to_string(), Endpoint{where, what.second});
      if (!fresh) {
        errors.add(what.second, where,
                   "address " + hp->to_string() + " is already used by " + it->second.where +
                       " (line " + std::to_string(it->second.line) + ")");
      }
    }
  }
}

Result<AgentConfig> parse_impl(std::string_view text, std::string_view filename, bool check_files) {
  Errors errors(filename);
  if (text.size() > kMaxConfigBytes) {
    errors.add(0, "", "file is larger than " + std::to_string(kMaxConfigBytes) + " bytes");
    return std::unexpected(errors.status());
  }
  // yaml-cpp 0.7's LoadAll() can loop forever on some inputs (a lone ","), so the first
  // document is built with Load() and the documents are only counted, at most two.
  YAML::Node doc;
  DocumentCounter counter;
  try {
    doc = YAML::Load(std::string(text));
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    for (int i = 0; i < 2 && parser.HandleNextDocument(counter); ++i) {
    }
  } catch (const YAML::Exception& e) {
    errors.add(e.mark.line >= 0 ? e.mark.line + 1 : 0, "", "YAML syntax error: " + e.msg);
    return std::unexpected(errors.status());
  }
  if (doc.IsNull()) {
    errors.add(1, "", "the file has no settings; see docs/CONFIG.md for the fields");
    return std::unexpected(errors.status());
  }
  if (counter.documents > 1) {
    errors.add(counter.second_line, "",
               "more than one YAML document (a second '---'); put one config per file");
  }

  AgentConfig c;
  const int top_line = line_of(doc) > 0 ? line_of(doc) : 1;
  auto top = read_map(doc, top_line, "", kTopKeys, errors);
  if (!top) {
    return std::unexpected(errors.status());
  }

  // Scalars at the top.
  std::optional<std::string> node, cluster, data_dir;
  std::optional<uint64_t> id;
  if (const Entry* e = require(*top, "node", top_line, "", errors)) {
    node = as_node_name(*e, errors);
  }
  if (const Entry* e = require(*top, "id", top_line, "", errors)) {
    id = as_uint(*e, 1, UINT64_MAX, errors);
  }
  if (const Entry* e = require(*top, "cluster", top_line, "", errors)) {
    cluster = as_name(*e, errors);
  }
  if (const Entry* e = require(*top, "data_dir", top_line, "", errors)) {
    data_dir = as_abs_path(*e, errors);
  }
  if (node) {
    c.node = *node;
  }
  if (id) {
    c.id = NodeId(*id);
  }
  if (cluster) {
    c.cluster = *cluster;
  }
  if (data_dir) {
    c.data_dir = *data_dir;
  }

  // listen
  std::optional<HostPort> listen_peer, listen_api;
  int listen_peer_line = 0, listen_api_line = 0;
  bool listen_api_bad = false;  // already reported: no second error about its API
  if (const Entry* e = require(*top, "listen", top_line, "", errors)) {
    if (auto f = read_map(e->value, e->line, e->path, kListenKeys, errors)) {
      if (const Entry* p = require(*f, "peer", e->line, e->path, errors)) {
        listen_peer = as_host_port(*p, true, errors);
        listen_peer_line = p->line;
      }
      if (const Entry* a = require(*f, "api", e->line, e->path, errors)) {
        listen_api = as_host_port(*a, true, errors);
        listen_api_line = a->line;
      }
    }
  }
  if (listen_peer) {
    c.listen.peer = *listen_peer;
  }
  if (listen_api) {
    c.listen.api = *listen_api;
  }
  if (listen_peer && listen_api && listen_peer->port == listen_api->port &&
      (listen_peer->host == listen_api->host || listen_peer->is_wildcard() ||
       listen_api->is_wildcard())) {
    errors.add(listen_api_line, "listen.api",
               "must differ from listen.peer (got " + listen_api->to_string() + ")");
    listen_api_bad = true;
  }

  // peers
  std::vector<PeerSource> sources;
  bool peers_complete = false;
  int peers_line = top_line;
  if (const Entry* e = require(*top, "peers", top_line, "", errors)) {
    peers_line = e->line;
    if (!e->value.IsSequence()) {
      errors.add(e->line, e->path,
                 "must be a list of {name, id, peer, api}, one per voter (got " +
                     describe(e->value) + ")");
    } else if (e->value.size() == 0) {
      errors.add(e->line, e->path, "must list every voter, this node included (got none)");
    } else if (e->value.size() > kMaxVoters) {
      errors.add(e->line, e->path,
                 "at most " + std::to_string(kMaxVoters) + " voters (got " +
                     std::to_string(e->value.size()) + "); 3 or 5 is usual");
    } else {
      peers_complete = true;
      for (size_t i = 0; i < e->value.size(); ++i) {
        const YAML::Node item = e->value[i];
        const int item_line = line_of(item) > 0 ? line_of(item) : e->line;
        const std::string path = peer_path(i);
        auto f = read_map(item, item_line, path, kPeerKeys, errors);
        if (!f) {
          peers_complete = false;
          continue;
        }
        PeerConfig p;
        PeerSource s{i, item_line, item_line, item_line, item_line};
        bool ok = true;
        if (const Entry* x = require(*f, "name", item_line, path, errors)) {
          auto v = as_node_name(*x, errors);
          ok = ok && v.has_value();
          if (v) {
            p.name = *v;
          }
          s.name_line = x->line;
        } else {
          ok = false;
        }
        if (const Entry* x = require(*f, "id", item_line, path, errors)) {
          auto v = as_uint(*x, 1, UINT64_MAX, errors);
          ok = ok && v.has_value();
          if (v) {
            p.id = NodeId(*v);
          }
          s.id_line = x->line;
        } else {
          ok = false;
        }
        if (const Entry* x = require(*f, "peer", item_line, path, errors)) {
          auto v = as_host_port(*x, false, errors);
          ok = ok && v.has_value();
          if (v) {
            p.peer = *v;
          }
          s.peer_line = x->line;
        } else {
          ok = false;
        }
        if (const Entry* x = require(*f, "api", item_line, path, errors)) {
          auto v = as_host_port(*x, false, errors);
          ok = ok && v.has_value();
          if (v) {
            p.api = *v;
          }
          s.api_line = x->line;
        } else {
          ok = false;
        }
        if (ok) {
          c.peers.push_back(std::move(p));
          sources.push_back(s);
        } else {
          peers_complete = false;
        }
      }
      check_peers_unique(c.peers, sources, errors);
    }
  }

  // This node's own entry, and listen against it.
  const PeerConfig* self = nullptr;
  if (node && peers_complete) {
    for (size_t k = 0; k < c.peers.size(); ++k) {
      if (c.peers[k].name == *node) {
        self = &c.peers[k];
        if (id && c.peers[k].id != NodeId(*id)) {
          errors.add(sources[k].id_line, peer_path(sources[k].index) + ".id",
                     "this node's entry must have the top-level id " + std::to_string(*id) +
                         " (got " + c.peers[k].id.str() + ")");
        }
        break;
      }
    }
    if (self == nullptr) {
      std::vector<std::string> names;
      for (const auto& p : c.peers) names.push_back(p.name);
      errors.add(peers_line, "peers",
                 "this node " + show(*node) +
                     " is not listed; list every voter, this node included (names: " +
                     join_words(names) + ")");
    }
  }
  if (self != nullptr) {
    using Check = std::pair<const std::optional<HostPort>*, std::pair<const HostPort*, int>>;
    const Check checks[] = {{&listen_peer, {&self->peer, listen_peer_line}},
                            {&listen_api, {&self->api, listen_api_line}}};
    for (size_t k = 0; k < 2; ++k) {
      const auto& [listen, want] = checks[k];
      if (!listen->has_value()) {
        continue;
      }
      const HostPort& l = **listen;
      if (l.port != want.first->port || (!l.is_wildcard() && l.host != want.first->host)) {
        errors.add(want.second, k == 0 ? "listen.peer" : "listen.api",
                   "must be this node's " + std::string(k == 0 ? "peer" : "api") +
                       " address from peers, " + want.first->to_string() +
                       ", or the wildcard host with that port (got " + l.to_string() + ")");
        listen_api_bad = listen_api_bad || k == 1;
      }
    }
  }

  // tls
  if (const Entry* e = require(*top, "tls", top_line, "", errors)) {
    if (auto f = read_map(e->value, e->line, e->path, kTlsKeys, errors)) {
      bool insecure_ok = true;
      if (const Entry* x = find(*f, "insecure")) {
        auto v = as_bool(*x, errors);
        insecure_ok = v.has_value();
        c.tls.insecure = v.value_or(false);
      }
      const std::pair<const char*, std::string*> files[] = {
          {"ca", &c.tls.ca_file}, {"cert", &c.tls.cert_file}, {"key", &c.tls.key_file}};
      bool any_file = false;
      for (const auto& [key, out] : files) {
        const Entry* x = find(*f, key);
        if (x == nullptr) {
          if (!c.tls.insecure && insecure_ok) {
            errors.add(e->line, join_path("tls", key),
                       "required key is missing (or set tls: {insecure: true} for loopback "
                       "trials)");
          }
          continue;
        }
        any_file = true;
        if (auto v = as_abs_path(*x, errors)) {
          *out = *v;
          if (check_files && !c.tls.insecure) {
            if (std::string why = check_readable(*v); !why.empty()) {
              errors.add(x->line, x->path, "cannot read " + *v + ": " + why);
            }
          }
        }
      }
      if (c.tls.insecure && any_file) {
        errors.add(find(*f, "insecure")->line, "tls.insecure",
                   "cannot be combined with ca, cert or key; keep one or the other");
      }
      if (c.tls.insecure) {
        std::vector<std::pair<std::string, HostPort>> addrs;
        if (listen_peer) {
          addrs.emplace_back("listen.peer", *listen_peer);
        }
        if (listen_api) {
          addrs.emplace_back("listen.api", *listen_api);
        }
        for (size_t k = 0; k < c.peers.size(); ++k) {
          addrs.emplace_back(peer_path(sources[k].index) + ".peer", c.peers[k].peer);
          addrs.emplace_back(peer_path(sources[k].index) + ".api", c.peers[k].api);
        }
        for (const auto& [where, hp] : addrs) {
          if (!hp.is_loopback()) {
            errors.add(find(*f, "insecure")->line, "tls.insecure",
                       "allowed only when every address is on loopback; " + where + " is " +
                           hp.to_string());
            break;
          }
        }
      }
    }
  }

  // api
  const Entry* api_entry = find(*top, "api");
  bool api_ok = true;
  if (api_entry != nullptr) {
    auto f = read_map(api_entry->value, api_entry->line, api_entry->path, kApiKeys, errors);
    api_ok = f.has_value();
    if (f) {
      if (const Entry* t = find(*f, "tls")) {
        if (auto tf = read_map(t->value, t->line, t->path, kApiTlsKeys, errors)) {
          const std::pair<const char*, std::string*> files[] = {{"cert", &c.api.cert_file},
                                                                {"key", &c.api.key_file}};
          for (const auto& [key, out] : files) {
            const Entry* x = require(*tf, key, t->line, t->path, errors);
            if (x == nullptr) {
              continue;
            }
            if (auto v = as_abs_path(*x, errors)) {
              *out = *v;
              if (check_files) {
                if (std::string why = check_readable(*v); !why.empty()) {
                  errors.add(x->line, x->path, "cannot read " + *v + ": " + why);
                }
              }
            }
          }
        }
        if (c.api.cert_file.empty() || c.api.key_file.empty()) {
          api_ok = false;  // reported above; do not also ask for TLS below
          c.api.cert_file.clear();
          c.api.key_file.clear();
        }
      }
      if (const Entry* t = find(*f, "tokens")) {
        if (!t->value.IsSequence()) {
          errors.add(t->line, t->path,
                     "must be a list of {name, role, token_file} (got " + describe(t->value) + ")");
        } else if (t->value.size() > kMaxApiTokens) {
          errors.add(t->line, t->path,
                     "at most " + std::to_string(kMaxApiTokens) + " tokens (got " +
                         std::to_string(t->value.size()) + ")");
        } else {
          std::map<std::string, std::pair<std::string, int>> names, files;
          for (size_t i = 0; i < t->value.size(); ++i) {
            const YAML::Node item = t->value[i];
            const int item_line = line_of(item) > 0 ? line_of(item) : t->line;
            const std::string path = "api.tokens[" + std::to_string(i) + "]";
            auto tf = read_map(item, item_line, path, kApiTokenKeys, errors);
            if (!tf) {
              continue;
            }
            ApiTokenConfig tok;
            bool ok = true;
            if (const Entry* x = require(*tf, "name", item_line, path, errors)) {
              auto v = as_name(*x, errors);
              ok = ok && v.has_value();
              if (v) {
                tok.name = *v;
                if (auto [it, fresh] = names.try_emplace(*v, path, x->line); !fresh) {
                  errors.add(x->line, x->path,
                             "duplicate name " + show(*v) + " (also " + it->second.first +
                                 ", line " + std::to_string(it->second.second) + ")");
                  ok = false;
                }
              }
            } else {
              ok = false;
            }
            if (const Entry* x = require(*tf, "role", item_line, path, errors)) {
              auto v = as_string(*x, errors);
              auto it = v ? std::find(std::begin(kApiRoles), std::end(kApiRoles), *v)
                          : std::end(kApiRoles);
              if (v && it == std::end(kApiRoles)) {
                errors.add(x->line, x->path,
                           "must be one of " + join_words(kApiRoles) + " (got " + show(*v) + ")");
              }
              ok = ok && it != std::end(kApiRoles);
              if (it != std::end(kApiRoles)) {
                tok.role = static_cast<ApiRole>(it - std::begin(kApiRoles));
              }
            } else {
              ok = false;
            }
            if (const Entry* x = require(*tf, "token_file", item_line, path, errors)) {
              auto v = as_abs_path(*x, errors);
              ok = ok && v.has_value();
              if (v) {
                tok.token_file = *v;
                if (auto [it, fresh] = files.try_emplace(*v, path, x->line); !fresh) {
                  errors.add(x->line, x->path,
                             "the same file as " + it->second.first + " (line " +
                                 std::to_string(it->second.second) +
                                 "): one token per caller, so that roles and logs tell them "
                                 "apart");
                  ok = false;
                } else if (check_files) {
                  if (auto r = read_token_file(*v); !r) {
                    errors.add(x->line, x->path, "cannot use " + *v + ": " + r.error().message());
                    ok = false;
                  }
                }
              }
            } else {
              ok = false;
            }
            if (ok) {
              c.api.tokens.push_back(std::move(tok));
            }
          }
        }
      }
    }
  }
  // Plain HTTP only where nobody else can listen in (like tls.insecure, loopback only).
  if (api_ok && !c.api.tls() && listen_api && !listen_api_bad && !listen_api->is_loopback()) {
    errors.add(api_entry != nullptr ? api_entry->line : listen_api_line, "api.tls",
               "required because listen.api " + listen_api->to_string() +
                   " is not on loopback (plain HTTP is allowed on loopback only): set "
                   "api: {tls: {cert: PATH, key: PATH}}; the node's certificate and key will do");
  }

  // timers
  if (const Entry* e = find(*top, "timers")) {
    if (auto f = read_map(e->value, e->line, e->path, kTimerKeys, errors)) {
      TimerConfig& t = c.timers;
      bool tick_ok = true, heartbeat_ok = true;
      if (const Entry* x = find(*f, "tick_ms")) {
        auto v = as_uint(*x, 1, 1000, errors);
        tick_ok = v.has_value();
        if (v) {
          t.tick_ms = static_cast<uint32_t>(*v);
        }
      }
      auto multiple_of_tick = [&](const Entry& x, uint32_t v) {
        if (tick_ok && v % t.tick_ms != 0) {
          errors.add(x.line, x.path,
                     "must be a multiple of tick_ms (got " + std::to_string(v) + ", tick " +
                         std::to_string(t.tick_ms) + ")");
          return false;
        }
        return true;
      };
      if (const Entry* x = find(*f, "heartbeat_ms")) {
        auto v = as_uint(*x, 1, 10000, errors);
        heartbeat_ok = v.has_value() && multiple_of_tick(*x, static_cast<uint32_t>(*v));
        if (v) {
          t.heartbeat_ms = static_cast<uint32_t>(*v);
        }
      }
      auto at_least_two_heartbeats = [&](const Entry& x, uint32_t v) {
        if (heartbeat_ok && v < 2 * t.heartbeat_ms) {
          errors.add(x.line, x.path,
                     "must be at least 2 × heartbeat_ms (got " + std::to_string(v) +
                         ", heartbeat " + std::to_string(t.heartbeat_ms) + ")");
        }
      };
      const std::pair<const char*, uint32_t*> spans[] = {
          {"election_timeout_ms", &t.election_timeout_ms}, {"hold_ms", &t.hold_ms}};
      for (const auto& [key, out] : spans) {
        if (const Entry* x = find(*f, key)) {
          if (auto v = as_uint(*x, 1, 60000, errors)) {
            *out = static_cast<uint32_t>(*v);
            if (multiple_of_tick(*x, *out)) {
              at_least_two_heartbeats(*x, *out);
            }
          }
        } else if (!tick_ok || !heartbeat_ok) {
          // A bad tick or heartbeat is already reported; the default is not re-judged.
        } else if (*out % t.tick_ms != 0 || *out < 2 * t.heartbeat_ms) {
          errors.add(e->line, join_path("timers", key),
                     "the default " + std::to_string(*out) +
                         " does not fit tick_ms and heartbeat_ms; set it explicitly");
        }
      }
      // The default leaves at least two heartbeats of the hold, like an explicit value must.
      t.hold_guard_ms = heartbeat_ok ? t.default_hold_guard_ms() : t.hold_ms / 4;
      if (const Entry* x = find(*f, "hold_guard_ms")) {
        if (auto v = as_uint(*x, 0, 60000, errors)) {
          t.hold_guard_ms = static_cast<uint32_t>(*v);
          if (heartbeat_ok && t.hold_guard_ms + 2 * t.heartbeat_ms > t.hold_ms) {
            errors.add(x->line, x->path,
                       "must leave at least 2 × heartbeat_ms of the hold (got " +
                           std::to_string(*v) + ", hold_ms " + std::to_string(t.hold_ms) +
                           ", heartbeat_ms " + std::to_string(t.heartbeat_ms) + ")");
          }
        }
      }
      if (const Entry* x = find(*f, "clock_drift")) {
        if (auto v = as_double(*x, 0.0, 0.5, "0 and 0.5", errors)) {
          t.clock_drift = *v;
        }
      }
    }
  }

  if (const Entry* e = find(*top, "fsync")) {
    if (auto v = as_bool(*e, errors)) {
      c.fsync = *v;
    }
  }
  if (const Entry* e = find(*top, "snapshot_entries")) {
    if (auto v = as_uint(*e, 1, kMaxSnapshotEntries, errors)) {
      c.snapshot_entries = *v;
    }
  }
  if (const Entry* e = find(*top, "event_retention")) {
    if (auto v = as_uint(*e, 10, 1000000, errors)) {
      c.event_retention = *v;
    }
  }
  if (const Entry* e = find(*top, "log_level")) {
    auto s = as_string(*e, errors);
    if (s) {
      auto it = std::find(std::begin(kLogLevels), std::end(kLogLevels), *s);
      if (it == std::end(kLogLevels)) {
        errors.add(e->line, e->path,
                   "must be one of " + join_words(kLogLevels) + " (got " + show(*s) + ")");
      } else {
        c.log_level = static_cast<LogLevel>(it - std::begin(kLogLevels));
      }
    }
  }

  if (!errors.empty()) {
    return std::unexpected(errors.status());
  }
  return c;
}

// Strings YAML would read back as null unless quoted.
bool needs_quotes(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

YAML::Emitter& emit_string(YAML::Emitter& out, const std::string& s) {
  if (needs_quotes(s)) {
    out << YAML::DoubleQuoted;
  }
  return out << s;
}

}  // namespace

bool is_valid_name(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) {
    return "[" + host + "]:" + std::to_string(port);
  }
  return host + ":" + std::to_string(port);
}

bool HostPort::is_wildcard() const {
  in6_addr a6{};
  if (::inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    return IN6_IS_ADDR_UNSPECIFIED(&a6);
  }
  return host == "0.0.0.0";
}

bool HostPort::is_loopback() const {
  if (host == "localhost") {
    return true;
  }
  in_addr a4{};
  if (::inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    return (ntohl(a4.s_addr) >> 24) == 127;
  }
  in6_addr a6{};
  if (::inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&a6);
  }
  return false;
}

Result<HostPort> parse_host_port(std::string_view text) {
  auto bad = [](std::string why) -> Result<HostPort> {
    return err(Errc::kInvalidArgument, std::move(why));
  };
  constexpr std::string_view kForm = "expected host:port, like 127.0.0.1:7001 or [::1]:7001";
  HostPort hp;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return bad("missing ']' after the IPv6 address; " + std::string(kForm));
    }
    hp.host = std::string(text.substr(1, close - 1));
    in6_addr a6{};
    if (::inet_pton(AF_INET6, hp.host.c_str(), &a6) != 1) {
      return bad("bad IPv6 address");
    }
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("missing :port; " + std::string(kForm));
    }
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return bad("missing :port; " + std::string(kForm));
    }
    hp.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (hp.host.find(':') != std::string::npos) {
      return bad("an IPv6 address needs brackets, like [::1]:7001");
    }
    if (hp.host.empty()) {
      return bad("missing host; " + std::string(kForm));
    }
    const bool numeric = std::all_of(hp.host.begin(), hp.host.end(),
                                     [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
    if (numeric) {
      in_addr a4{};
      if (::inet_pton(AF_INET, hp.host.c_str(), &a4) != 1) {
        return bad("bad IPv4 address");
      }
    } else if (!valid_hostname(hp.host)) {
      return bad("bad host name");
    }
  }
  unsigned port = 0;
  const char* end = port_text.data() + port_text.size();
  auto [ptr, ec] = std::from_chars(port_text.data(), end, port);
  const bool digits_only =
      !port_text.empty() && port_text.front() != '-' && port_text.front() != '+';
  if (!digits_only || ec != std::errc() || ptr != end || port == 0 || port > 65535) {
    return bad("port must be a number from 1 to 65535");
  }
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

std::string_view log_level_name(LogLevel level) { return kLogLevels[static_cast<size_t>(level)]; }

std::string_view api_role_name(ApiRole role) { return kApiRoles[static_cast<size_t>(role)]; }

Result<std::string> read_api_token_file(const std::string& path) {
  ASSIGN_OR_RETURN(auto f, read_token_file(path));
  return std::move(f.token);
}

Result<std::vector<ApiTokenSecret>> read_api_tokens(const AgentConfig& config,
                                                    std::vector<std::string>* warnings) {
  std::vector<ApiTokenSecret> out;
  for (size_t i = 0; i < config.api.tokens.size(); ++i) {
    const ApiTokenConfig& t = config.api.tokens[i];
    const std::string where = "api.tokens[" + std::to_string(i) + "].token_file";
    auto f = read_token_file(t.token_file);
    if (!f) {
      return err(f.error().code(),
                 where + ": cannot use " + t.token_file + ": " + f.error().message());
    }
    if ((f->mode & 077) != 0 && warnings != nullptr) {
      char mode[16];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(f->mode) & 07777u);
      warnings->push_back(where + ": " + t.token_file + " may be read by group or others (mode " +
                          mode + "); chmod 600 it");
    }
    out.push_back(ApiTokenSecret{t.name, t.role, std::move(f->token)});
  }
  return out;
}

const PeerConfig& AgentConfig::self() const {
  for (const auto& p : peers) {
    if (p.name == node) {
      return p;
    }
  }
  std::fprintf(stderr, "AgentConfig::self: node %s is not in peers\n", node.c_str());
  std::abort();  // an unvalidated config reached code that requires a validated one
}

Result<AgentConfig> parse_agent_config(std::string_view text, std::string_view filename) {
  return parse_impl(text, filename, /*check_files=*/false);
}

Result<AgentConfig> load_agent_config(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    return err(e == ENOENT ? Errc::kNotFound : Errc::kIoError,
               "cannot read " + path + ": " + std::strerror(e));
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      const int e = errno;
      ::close(fd);
      return err(Errc::kIoError, "cannot read " + path + ": " + std::strerror(e));
    }
    if (n == 0) {
      break;
    }
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfigBytes) {
      break;  // parse_impl reports the size
    }
  }
  ::close(fd);
  return parse_impl(text, path, /*check_files=*/true);
}

std::string render_agent_config(const AgentConfig& c) {
  YAML::Emitter out;
  out << YAML::Comment("Vigil agent config for node " + c.node + " (fields: docs/CONFIG.md)");
  out << YAML::BeginMap;
  out << YAML::Key << "node" << YAML::Value;
  emit_string(out, c.node);
  out << YAML::Key << "id" << YAML::Value << c.id.value();
  out << YAML::Key << "cluster" << YAML::Value;
  emit_string(out, c.cluster);
  out << YAML::Key << "data_dir" << YAML::Value;
  emit_string(out, c.data_dir);
  out << YAML::Key << "listen" << YAML::Value << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "peer" << YAML::Value << c.listen.peer.to_string();
  out << YAML::Key << "api" << YAML::Value << c.listen.api.to_string();
  out << YAML::EndMap;
  out << YAML::Key << "peers" << YAML::Value << YAML::BeginSeq;
  for (const auto& p : c.peers) {
    out << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value;
    emit_string(out, p.name);
    out << YAML::Key << "id" << YAML::Value << p.id.value();
    out << YAML::Key << "peer" << YAML::Value << p.peer.to_string();
    out << YAML::Key << "api" << YAML::Value << p.api.to_string();
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "tls" << YAML::Value << YAML::Flow << YAML::BeginMap;
  if (c.tls.insecure) {
    out << YAML::Key << "insecure" << YAML::Value << true;
  } else {
    out << YAML::Key << "ca" << YAML::Value;
    emit_string(out, c.tls.ca_file);
    out << YAML::Key << "cert" << YAML::Value;
    emit_string(out, c.tls.cert_file);
    out << YAML::Key << "key" << YAML::Value;
    emit_string(out, c.tls.key_file);
  }
  out << YAML::EndMap;
  if (c.api != ApiConfig{}) {
    out << YAML::Key << "api" << YAML::Value << YAML::BeginMap;
    if (c.api.tls()) {
      out << YAML::Key << "tls" << YAML::Value << YAML::Flow << YAML::BeginMap;
      out << YAML::Key << "cert" << YAML::Value;
      emit_string(out, c.api.cert_file);
      out << YAML::Key << "key" << YAML::Value;
      emit_string(out, c.api.key_file);
      out << YAML::EndMap;
    }
    if (!c.api.tokens.empty()) {
      out << YAML::Key << "tokens" << YAML::Value << YAML::BeginSeq;
      for (const auto& t : c.api.tokens) {
        out << YAML::Flow << YAML::BeginMap;
        out << YAML::Key << "name" << YAML::Value;
        emit_string(out, t.name);
        out << YAML::Key << "role" << YAML::Value << std::string(api_role_name(t.role));
        out << YAML::Key << "token_file" << YAML::Value;
        emit_string(out, t.token_file);
        out << YAML::EndMap;
      }
      out << YAML::EndSeq;
    }
    out << YAML::EndMap;
  }
  char drift[64];
  auto res =
      std::to_chars(drift, drift + sizeof drift, c.timers.clock_drift, std::chars_format::fixed);
  out << YAML::Key << "timers" << YAML::Value << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "tick_ms" << YAML::Value << c.timers.tick_ms;
  out << YAML::Key << "heartbeat_ms" << YAML::Value << c.timers.heartbeat_ms;
  out << YAML::Key << "election_timeout_ms" << YAML::Value << c.timers.election_timeout_ms;
  out << YAML::Key << "hold_ms" << YAML::Value << c.timers.hold_ms;
  out << YAML::Key << "hold_guard_ms" << YAML::Value << c.timers.hold_guard_ms;
  out << YAML::Key << "clock_drift" << YAML::Value << std::string(drift, res.ptr);
  out << YAML::EndMap;
  out << YAML::Key << "fsync" << YAML::Value << c.fsync;
  out << YAML::Key << "snapshot_entries" << YAML::Value << c.snapshot_entries;
  out << YAML::Key << "log_level" << YAML::Value << std::string(log_level_name(c.log_level));
  out << YAML::Key << "event_retention" << YAML::Value << c.event_retention;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::vector<std::string> config_warnings(const AgentConfig& c) {
  std::vector<std::string> out;
  if (c.tls.insecure) {
    out.push_back(std::string("tls.insecure: ") +
                  (c.api.tls() ? "peer traffic is" : "peer and API traffic is") +
                  " neither encrypted nor authenticated; "
                  "use this for loopback trials only");
  }
  if (c.api.tokens.empty() && !c.listen.api.is_loopback()) {
    out.push_back("api.tokens: none configured: anyone who reaches " + c.listen.api.to_string() +
                  " can read and write every key; add tokens (docs/CONFIG.md \"api\")");
  }
  if (!c.fsync) {
    out.push_back(
        "fsync: false: a power loss can lose writes the cluster acknowledged, which breaks "
        "Raft's guarantees");
  }
  if (c.peers.size() == 1) {
    out.push_back("peers: a single voter tolerates no failure; use 3 or 5 voters");
  } else if (c.peers.size() % 2 == 0) {
    out.push_back("peers: " + std::to_string(c.peers.size()) +
                  " voters tolerate no more failures than " + std::to_string(c.peers.size() - 1) +
                  "; use an odd number (3 or 5)");
  }
  return out;
}

}  // namespace vigil::daemon
