// The AOT header: it states the specialisation, declares every kernel, carries the kernel ABI
// verbatim, and compiles on its own as C and C++ (also two headers in one file).
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "compiler/aot/header_writer.h"
#include "ir/error.h"
#include "tests/aot/aot_test_support.h"
#include "tests/cache/cache_test_support.h"

namespace flashjit {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

KernelPlan image_plan() {
  AttentionSpec spec;
  spec.channels = 80;
  spec.heads = 2;
  spec.seq_len = 49;
  spec.layout = Layout::Image;
  spec.causal = true;
  spec.dtype = DType::F64;
  spec.kind = AttentionKind::Standard;
  return plan_kernels(spec, host_target());
}

TEST(HeaderWriter, StatesTheSpecialisationAndDeclaresEveryKernel) {
  const KernelPlan plan = image_plan();
  const std::string header = aot::write_header(plan, 3);
  const std::string p = aot::symbol_prefix(plan);
  EXPECT_EQ(p.substr(0, 3), "fj_");
  EXPECT_EQ(p.back(), '_');
  for (const PlannedKernel& k : plan.kernels) {
    EXPECT_EQ(k.name.substr(0, p.size()), p);
    EXPECT_TRUE(contains(header, fmt::format(
                                     "void {}(const flashjit_args* args, int64_t tile_begin, int64_t tile_end);",
                                     k.name)));
    EXPECT_TRUE(contains(header, fmt::format("int64_t {}_tiles(int64_t batch);", k.name)));
    EXPECT_TRUE(contains(header, fmt::format("{{\"{0}\", {0}, {0}_tiles}}", k.name)));
  }
  EXPECT_TRUE(contains(header, "typedef double " + p + "element;"));
  EXPECT_TRUE(contains(header, p + "channels = 80;"));
  EXPECT_TRUE(contains(header, p + "heads = 2;"));
  EXPECT_TRUE(contains(header, p + "head_dim = 40;"));
  EXPECT_TRUE(contains(header, p + "seq_len = 49;"));
  EXPECT_TRUE(contains(header, p + "causal = 1;"));
  EXPECT_TRUE(contains(header, p + "image_layout = 1;"));
  EXPECT_TRUE(contains(header, p + "flash = 0;"));
  EXPECT_TRUE(contains(header, p + "target_cpu[] = \"" + plan.target.cpu + "\";"));
  EXPECT_TRUE(contains(header, p + "target_features[] = \"" + plan.target.features + "\";"));
  EXPECT_TRUE(contains(header, p + "workspace_elements_per_batch = 3920;"));
  // The forward's table runs project_qkv, attention, project_out; the backward's its kernels on
  // the q, k, v the forward left: seven, and the dq sum of this shape's key parts.
  EXPECT_TRUE(contains(header, p + "kernel_count = 3 }"));
  EXPECT_TRUE(contains(header, p + "backward_kernel_count = 8 }"));
  // What a standalone program needs to size lse and the backward's workspaces.
  const BackwardWorkspaceSizes one = plan.backward_workspace_elements(1);
  EXPECT_TRUE(contains(header, p + "lse_elements_per_batch = 98;"));
  EXPECT_TRUE(contains(header, fmt::format("{}dattn_elements_per_batch = {};", p, one.dattn)));
  EXPECT_TRUE(contains(header, fmt::format("{}dqkv_elements_per_batch = {};", p, one.dqkv)));
  EXPECT_TRUE(contains(header, fmt::format("{}delta_elements_per_batch = {};", p, one.delta)));
  EXPECT_TRUE(contains(header, fmt::format("{}wt_elements = {};", p, one.wt)));
  EXPECT_EQ(plan.backward_workspace_elements(3).delta, 3 * one.delta);
  // The comment, for readers.
  EXPECT_TRUE(contains(header, "channels 80, heads 2, head_dim 40, sequence length 49, dtype f64"));
  EXPECT_TRUE(contains(header, "causal mask yes"));
  EXPECT_TRUE(contains(header, "for batch 3: 11760 elements (94080 bytes) each"));
  EXPECT_TRUE(contains(header, "#define FLASHJIT_AOT(member) " + p + "##member"));
}

TEST(HeaderWriter, CarriesTheKernelAbiVerbatim) {
  const std::string abi =
      testing::read_bytes(std::filesystem::path(FLASHJIT_SOURCE_DIR) / "compiler" / "kernel_abi.h");
  ASSERT_FALSE(abi.empty());
  EXPECT_TRUE(contains(aot::write_header(image_plan()), abi));
}

TEST(HeaderWriter, RejectsANegativeBatch) {
  EXPECT_THROW(aot::write_header(image_plan(), -1), InvalidArgument);
}

TEST(HeaderWriter, CompilesStandaloneAsCAndCxx) {
  testing::TempDir dir("header");
  KernelPlan other_plan = testing::small_plan();
  testing::write_bytes(dir.path() / "a.h", aot::write_header(image_plan()));
  testing::write_bytes(dir.path() / "b.h", aot::write_header(other_plan));
  // Two specialisations in one file, using the kernel tables and constants of both.
  testing::write_bytes(dir.path() / "use.c",
                       "#define FLASHJIT_AOT_NO_SHORTHAND\n#include \"a.h\"\n#include \"b.h\"\n"
                       "int64_t count(void) { return " + aot::symbol_prefix(image_plan()) +
                           "kernel_count + " + aot::symbol_prefix(other_plan) + "kernels[0].tiles(1) + " +
                           aot::symbol_prefix(other_plan) + "channels; }\n");
  testing::write_bytes(dir.path() / "use.cpp",
                       "#include \"a.h\"\nint64_t channels() { return FLASHJIT_AOT(channels) + "
                       "FLASHJIT_AOT(kernels)[0].tiles(1); }\n");
  // Plans of one pass (what the layer and FLASHJIT_DUMP_DIR compile): the other pass's table is
  // empty, which ISO C cannot declare as an array of 0.
  testing::write_bytes(dir.path() / "f.h", aot::write_header(plan_kernels(image_plan().spec, host_target(), {},
                                                                          KernelPasses::Forward)));
  testing::write_bytes(dir.path() / "g.h", aot::write_header(plan_kernels(image_plan().spec, host_target(), {},
                                                                          KernelPasses::Backward)));
  const std::string d = dir.path().string();
  for (const std::string& command :
       {"cc -std=c99 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c " + d + "/a.h",
        "cc -std=c99 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c " + d + "/f.h",
        "cc -std=c99 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c " + d + "/g.h",
        "c++ -std=c++17 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c++ " + d + "/g.h",
        "c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only -x c++ " + d + "/a.h",
        "cc -std=c99 -Wall -Wextra -Werror -fsyntax-only " + d + "/use.c",
        "c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only " + d + "/use.cpp"}) {
    std::string output;
    EXPECT_EQ(testing::run_shell(command, &output), 0) << command << "\n" << output;
  }
}

}  // namespace
}  // namespace flashjit
