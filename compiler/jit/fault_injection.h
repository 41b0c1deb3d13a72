// Fault injection: makes one stage of the JIT pipeline or the disk cache fail on purpose, so that
// tests (and users checking their own error handling) see each failure take the real error path:
// the same error type, raised at the same place, handled by the same code as the real failure.
//
//   FLASHJIT_FAULT=<site>[,<site>...]   read on every check, so a test sets and unsets it between
//                                        calls (setenv is not thread-safe: not while others compile)
//
//   verifier       the LLVM module gets a function without a terminator; the IR verifier rejects it
//   codegen        the emitter of the plan's first kernel fails, as an emitter's InvalidArgument does
//   emit-object    the backend refuses to emit the object file
//   symbol-lookup  the JIT looks up a name the object does not define; the lookup fails
//   cache-write    writing the disk cache entry fails as a full disk does (ENOSPC)
//   cache-damage   the disk cache entry reads back with one object byte flipped
//   compile-thread the system refuses every compile thread (std::system_error); the plan's groups
//                  compile on the calling thread
//
// The hooks cost one getenv when the variable is unset.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace flashjit::jit {

enum class FaultSite {
  Verifier,
  Codegen,
  EmitObject,
  SymbolLookup,
  CacheWrite,
  CacheDamage,
  CompileThread,
};

// The name FLASHJIT_FAULT uses for `site` ("emit-object").
const char* to_string(FaultSite site);

// The sites named by a comma-separated list; blanks around names and empty items are ignored.
// Throws InvalidArgument naming the unknown site and every valid one.
std::vector<FaultSite> parse_fault_sites(std::string_view text);

// True when FLASHJIT_FAULT names `site`. Throws InvalidArgument when it names an unknown site:
// a misspelt fault must not pass silently as "no fault".
bool fault_injected(FaultSite site);

// Throws InvalidArgument when FLASHJIT_FAULT names an unknown site. jit::compile_cached calls it
// before any work, so the caller gets the misspelling instead of a compile failure.
void check_fault_sites();

// "injected fault (FLASHJIT_FAULT=<site>)": each hook puts it in its error, so diagnostics built
// from the error show that the failure was injected and where.
std::string fault_note(FaultSite site);

}  // namespace flashjit::jit
