// CRC-32C (Castagnoli) for WAL records and frames. Software table, no hardware dependency.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace vigil {

// Extends `crc` (0 to start) over `data`.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n);
// The table implementation, whatever the CPU: what the fast path is tested against.
uint32_t crc32c_extend_portable_for_test(uint32_t crc, const void* data, size_t n);
inline uint32_t crc32c(std::string_view data) { return crc32c_extend(0, data.data(), data.size()); }

}  // namespace vigil
