// Text renderers of a plan: the summary, the scores with their terms, and the graph as dot.
#pragma once

#include <string>

#include "cluster/model.h"
#include "sched/plan.h"

namespace vigil::sched {

// Current state, warnings, the plan as an operator reads it, the actions with their
// dependencies, and the revised state (`revised` is apply_plan(snapshot, p)).
std::string render_summary(const cluster::ClusterSnapshot& snapshot, const Plan& p,
                           const cluster::ClusterSnapshot& revised);

// Every placement unit, every node, each score with the terms that sum to it.
std::string render_scores(const Plan& p);

// The action graph in Graphviz dot: nodes "a<id>" in id order, edges sorted.
std::string render_dot(const Plan& p);

// One line per resource: where it runs, in what role, with failures.
std::string render_resources(const cluster::ClusterSnapshot& snapshot);

}  // namespace vigil::sched
