// Each subcommand of the `flashjit` tool lives in its own file and registers itself here.
#pragma once

#include <CLI/CLI.hpp>

namespace flashjit::tools {

// Exit code for bad flags, bad values and failed runs: one clear line on stderr.
inline constexpr int kUsageError = 2;

void add_run_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_dump_command(CLI::App& app);
void add_cache_command(CLI::App& app);

}  // namespace flashjit::tools
