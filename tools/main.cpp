// The `flashjit` command: run, dump, bench, cache. Each subcommand registers itself from its file.
#include <cstdio>
#include <exception>

#include "ir/error.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"flashjit: shape-specialised attention kernels for CPUs"};
  app.require_subcommand(1);
  flashjit::tools::add_run_command(app);
  flashjit::tools::add_bench_command(app);
  flashjit::tools::add_dump_command(app);
  flashjit::tools::add_cache_command(app);
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
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flashjit: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
