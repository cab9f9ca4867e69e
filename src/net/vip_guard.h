// The VIP guard: a small process (`vigil __vip-guard`, started by the agent) that removes the
// agent's virtual IPs when the agent can no longer do it itself — killed (SIGKILL, the OOM
// killer, a crash) or hung (SIGSTOP, a stuck loop) — so that the address is never left on
// an interface after the hold that allowed it ended (DESIGN.md "Holds", docs/OPERATIONS.md).
// It also stops the agent's exclusive OCF, LSB and systemd resources then, by running the
// stop recipes the agent wrote (exec/stop_recipe.h): a daemon such as nginx outlives the
// agent that started it, and would run on while another node starts it.
//
// The agent writes one line per change to the guard's stdin (a pipe):
//   add IFINDEX ADDRESS/PREFIX     an address the agent added (or found present and kept)
//   del IFINDEX ADDRESS/PREFIX     an address the agent removed
//   hold UNTIL_MS                  the agent's hold ends at UNTIL_MS (CLOCK_MONOTONIC, ms);
//                                  0: it holds nothing
//   stop-add PATH                  a resource the agent runs, stopped by the recipe in the
//                                  file PATH (absolute, printable ASCII, no spaces)
//   stop-del PATH                  the agent stopped it itself
// The guard removes every address it was told of when UNTIL_MS passes without a later
// `hold`, and when the pipe reaches end of file (the agent exited, however it died), then
// runs every stop recipe it was told of, all at once, each bounded by its timeout; it
// forgets what it removed and stopped. After end of file it exits. It ignores SIGINT, SIGTERM and
// SIGHUP: an agent stopping gracefully removes its addresses itself, and the guard covers it until
// it has exited.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "net/vip.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace vigil::net {

// --- The protocol (pure) ------------------------------------------------------------------

struct GuardAddress {
  int ifindex = 0;  // > 0
  IpAddress ip;
  int prefix_len = 0;  // 0..32 or 0..128
  auto operator<=>(const GuardAddress& o) const {
    if (auto c = ifindex <=> o.ifindex; c != 0) return c;
    if (auto c = ip.v6 <=> o.ip.v6; c != 0) return c;
    if (auto c = ip.bytes <=> o.ip.bytes; c != 0) return c;
    return prefix_len <=> o.prefix_len;
  }
  bool operator==(const GuardAddress& o) const = default;
  std::string to_string() const;  // "3 198.18.0.100/24"
};

struct GuardCommand {
  enum class Kind : uint8_t { kAdd, kDel, kHold, kStopAdd, kStopDel };
  Kind kind = Kind::kHold;
  GuardAddress addr;       // kAdd, kDel
  int64_t hold_until = 0;  // kHold: CLOCK_MONOTONIC ms, 0 = no hold
  std::string path;        // kStopAdd, kStopDel: a stop recipe's file
};

inline constexpr size_t kMaxGuardPathBytes = 4096;
inline constexpr size_t kMaxGuardLineBytes = kMaxGuardPathBytes + 16;

// One line without its '\n'. Errors are kInvalidArgument and say what is wrong: "unknown
// command 'ad'", "ifindex '0' is not a positive integer", "prefix 33 is over 32", ...
Result<GuardCommand> parse_guard_command(std::string_view line);
// The line for `c`, with its '\n'; parse_guard_command() reads it back.
std::string format_guard_command(const GuardCommand& c);

// What the guard knows: the addresses and the hold. Pure; the guard's loop drives it.
class GuardState {
 public:
  void apply(const GuardCommand& c);
  // When the addresses must go and the stops run if nothing changes: nullopt when neither
  // is known, else the hold's end (0 when there is no hold: at once).
  std::optional<int64_t> deadline() const;
  // True when addresses or stops are known and the hold has ended at `now_ms` (or there
  // is none).
  bool expired(int64_t now_ms) const;
  // Takes every known address (to remove them); the state then knows none.
  std::vector<GuardAddress> take_all();
  // Takes every known stop recipe's path (to run them); the state then knows none.
  std::vector<std::string> take_stops();
  const std::set<GuardAddress>& addresses() const { return addrs_; }
  const std::set<std::string>& stops() const { return stops_; }
  int64_t hold_until() const { return hold_until_; }

 private:
  std::set<GuardAddress> addrs_;
  std::set<std::string> stops_;
  int64_t hold_until_ = 0;
};

// --- The guard process (I/O) --------------------------------------------------------------

// The guard's main loop over descriptor `fd` (its stdin). Logs to stderr. Returns the exit
// code: 0 after end of file with every address removed, 1 if a removal failed.
int run_vip_guard(int fd);

// Runs the stop recipes in the files `paths` at once and waits for them: each is killed
// (its process group) at its timeout. Logs what each did to stderr, `why` first; removes
// the files of the stops that succeeded. Returns how many failed (unreadable, bad, not
// run, non-zero exit, timed out).
int run_stop_recipes(const std::vector<std::string>& paths, const std::string& why);

// Removes one address by rtnetlink (absent, or its interface gone: OK).
Status remove_address(const GuardAddress& a);

// --- The agent's side (I/O) ---------------------------------------------------------------

// Starts the guard (`exe __vip-guard`, exe normally /proc/self/exe) and keeps it told.
// Thread: the io_context's. Writes never block: what the pipe cannot take now waits in a
// bounded buffer and goes when it can. A guard that dies is started again (after 1 s) and
// told everything again. Destroying the client closes the pipe: the guard then removes
// whatever it still knows of and exits.
class GuardClient {
 public:
  GuardClient(boost::asio::io_context& io, std::string exe);
  ~GuardClient();
  GuardClient(const GuardClient&) = delete;
  GuardClient& operator=(const GuardClient&) = delete;

  Status start();
  void add(const GuardAddress& a);
  void del(const GuardAddress& a);
  // A stop recipe's file (written before), to run if the hold ends; and its removal.
  void add_stop(const std::string& path);
  void del_stop(const std::string& path);
  // The hold ends at `until_ms` (CLOCK_MONOTONIC ms; 0: no hold). Sent only when it changed.
  void hold(int64_t until_ms);
  pid_t pid() const;  // -1 when not running

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace vigil::net
