// Key ranges as etcd defines them: [key, range_end), "" = one key, "\0" = every key >= key.
#pragma once

#include <string>
#include <string_view>

namespace vigil::store {

// The range_end meaning "no upper bound".
inline constexpr std::string_view kRangeAll{"\0", 1};

// Whether `k` lies in the range (key, range_end) as a request states it.
inline bool in_range(std::string_view k, std::string_view key, std::string_view range_end) {
  if (range_end.empty()) return k == key;
  if (k < key) return false;
  return range_end == kRangeAll || k < range_end;
}

// The range_end that selects every key starting with `prefix`: the prefix with its last
// byte incremented, after dropping trailing 0xff bytes; "\0" (all keys) if nothing is left.
inline std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(kRangeAll);
}

}  // namespace vigil::store
