// dispatched_target_name(): asks the dispatch itself which target it picks, so diagnostics show
// what the kernels really run (and tests that force a target can check it took effect).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "runtime/fallback/dispatched_target.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <string>

#include "hwy/highway.h"
#include "hwy/targets.h"
#include "runtime/fallback/fallback_forward.h"

HWY_BEFORE_NAMESPACE();
namespace flashjit::fallback::HWY_NAMESPACE {

const char* compiled_target_name() { return hwy::TargetName(HWY_TARGET); }

}  // namespace flashjit::fallback::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace flashjit::fallback {

HWY_EXPORT(compiled_target_name);

std::string dispatched_target_name() { return HWY_DYNAMIC_DISPATCH(compiled_target_name)(); }

}  // namespace flashjit::fallback
#endif  // HWY_ONCE
