// The `flashjit` command: run, dump, bench, cache. Each subcommand registers itself from its file.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "compiler/host.h"
#include "ir/error.h"
#include "runtime/io/atomic_file.h"
#include "tools/commands.h"

namespace {

// Interrupted (Ctrl-C, kill, a closed terminal): the outputs' temporary files go, then the signal
// ends the process as it would have.
extern "C" void on_interrupt(int signal) {
  flashjit::io::remove_pending_temporaries();
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

// Output lost to a full disk or a closed pipe fails the command, instead of a silent exit 0 (or an
// "internal error" when fmt noticed first).
int with_output_checked(int code) {
  errno = 0;
  if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return code;
  std::fprintf(stderr, "flashjit: cannot write the standard output%s%s\n", errno ? ": " : "",
               errno ? std::strerror(errno) : "");
  return code == 0 || code == 1 ? flashjit::tools::kUsageError : code;
}

int run(int argc, char** argv) {
  for (int signal : {SIGINT, SIGTERM, SIGHUP}) std::signal(signal, on_interrupt);
  CLI::App app{"flashjit: shape-specialised attention kernels for CPUs"};
  app.require_subcommand(1);
  flashjit::tools::add_run_command(app);
  flashjit::tools::add_bench_command(app);
  flashjit::tools::add_dump_command(app);
  flashjit::tools::add_cache_command(app);
  // A count the pool would ignore: say so before any work rather than run on another count (help
  // does no work, so it is shown regardless).
  bool help = false;
  for (int i = 1; i < argc; ++i) help = help || std::strcmp(argv[i], "-h") == 0 || std::strcmp(argv[i], "--help") == 0;
  if (const std::string problem = flashjit::thread_count_problem(); !problem.empty() && !help) {
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
    if (std::ferror(stdout)) return flashjit::tools::kUsageError;  // with_output_checked says why
    std::fprintf(stderr, "flashjit: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return with_output_checked(run(argc, argv)); }
