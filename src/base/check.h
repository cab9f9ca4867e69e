// CHECK (always on), DCHECK (debug and simulation), BUG (logged in release, fatal in debug).
#pragma once

#include <cstdio>
#include <cstdlib>

namespace vigil::detail {
[[noreturn]] inline void check_failed(const char* file, int line, const char* expr) {
  std::fprintf(stderr, "CHECK failed at %s:%d: %s\n", file, line, expr);
  std::fflush(stderr);
  std::abort();
}
}  // namespace vigil::detail

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) ::vigil::detail::check_failed(__FILE__, __LINE__, #cond); \
  } while (0)

#ifdef NDEBUG
#define DCHECK(cond) \
  do {               \
  } while (0)
#else
#define DCHECK(cond) CHECK(cond)
#endif
