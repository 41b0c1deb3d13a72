// The `flashjit` command: run, dump, bench, cache. Each subcommand registers itself from its file.
#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "compiler/host.h"
#include "ir/error.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"flashjit: shape-specialised attention kernels for CPUs"};
  app.require_subcommand(1);
  flashjit::tools::add_run_command(app);
  flashjit::tools::add_bench_command(app);
  flashjit::tools::add_dump_command(app);
  flashjit::tools::add_cache_command(app);
  // A count the pool would ignore: say so before any work rather than run on another count.
  if (const std::string problem = flashjit::thread_count_problem(); !problem.empty()) {
    std::fprintf(stderr, "flashjit: %s (unset it for one thread per hardware thread)\n", problem.c_str());
    return flashjit::tools::kUsageError;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "flashjit: %s\n", e.what());
    return flashjit::tools::kUsageError;
  } catch (const flashjit::Error& e) {
    std::fprintf(stderr, "flashjit: %s\n", e.what());
    return flashjit::tools::kUsageError;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr,
                 "flashjit: out of memory: the tensors of this shape need more memory than this machine can give "
                 "(smaller --channels, --spatial or --batch fit)\n");
    return flashjit::tools::kUsageError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flashjit: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
