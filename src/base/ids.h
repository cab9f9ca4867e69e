// Strong id types: NodeId, Term, LogIndex. Never pass a bare uint64_t for these.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <string>

namespace vigil {

// A typed wrapper over an integer. Ordered types (Term, LogIndex) also allow adding and
// subtracting plain counts, which is what Raft's index arithmetic needs.
template <class Tag>
struct StrongId {
  uint64_t v = 0;
  constexpr StrongId() = default;
  constexpr explicit StrongId(uint64_t value) : v(value) {}
  constexpr uint64_t value() const { return v; }
  constexpr auto operator<=>(const StrongId&) const = default;
  constexpr StrongId operator+(uint64_t n) const { return StrongId(v + n); }
  constexpr StrongId operator-(uint64_t n) const { return StrongId(v - n); }
  constexpr uint64_t operator-(StrongId other) const { return v - other.v; }
  constexpr StrongId& operator++() {
    ++v;
    return *this;
  }
  std::string str() const { return std::to_string(v); }
};

struct NodeIdTag {};
struct TermTag {};
struct LogIndexTag {};

// NodeId 0 means "none" (no vote, no leader).
using NodeId = StrongId<NodeIdTag>;
using Term = StrongId<TermTag>;
using LogIndex = StrongId<LogIndexTag>;

inline constexpr NodeId kNoNode{0};

}  // namespace vigil

template <class Tag>
struct std::hash<vigil::StrongId<Tag>> {
  size_t operator()(const vigil::StrongId<Tag>& id) const noexcept {
    return std::hash<uint64_t>()(id.v);
  }
};
