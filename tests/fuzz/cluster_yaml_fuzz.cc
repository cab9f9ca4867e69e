// Fuzz target for the cluster definition and case readers (src/sched/io/case_yaml.h): no input
// crashes them or escapes as an exception; every error names the file and a line; whatever is
// accepted passes validation, diffs empty against itself and can be planned.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/check.h"
#include "cluster/model.h"
#include "sched/io/case_yaml.h"
#include "sched/plan.h"

namespace {

void check_error(const vigil::Status& s, std::string_view file) {
  const std::string& m = s.message();
  CHECK(m.starts_with(std::string(file) + ":"));
  // FILE:LINE: with a decimal line.
  size_t colon = m.find(':', file.size() + 1);
  CHECK(colon != std::string::npos && colon > file.size() + 1);
  for (size_t i = file.size() + 1; i < colon; ++i) CHECK(m[i] >= '0' && m[i] <= '9');
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vigil;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto def = sched::parse_cluster_yaml(text, "cluster.yaml");
  if (!def) {
    check_error(def.error(), "cluster.yaml");
  } else {
    CHECK(cluster::validate_definition(*def).ok());
    CHECK(cluster::diff_definitions(*def, *def).empty());
    for (const cluster::Resource& r : def->resources) CHECK(!cluster::needs_restart(r, r));
    // The same text read again gives the same definition.
    auto again = sched::parse_cluster_yaml(text, "cluster.yaml");
    CHECK(again.has_value() && cluster::diff_definitions(*def, *again).empty());
    // Against an empty definition, every object is one line.
    size_t objects = def->nodes.size() + def->resources.size() + def->groups.size() +
                     def->clones.size() + def->locations.size() + def->colocations.size() +
                     def->orders.size() + def->fence_devices.size();
    CHECK(cluster::diff_definitions(cluster::ClusterSnapshot{}, *def).size() == objects);
    // A valid definition is a valid scheduler input (small ones: planning is not cheap).
    if (def->nodes.size() * (def->resources.size() + 1) <= 400) {
      auto p = sched::plan(*def);
      CHECK(p.has_value());
    }
  }

  auto snap = sched::parse_snapshot_yaml(text, "input.yaml");
  if (!snap) {
    check_error(snap.error(), "input.yaml");
  } else {
    CHECK(cluster::validate(*snap).ok());
  }
  return 0;
}
