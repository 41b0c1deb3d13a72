// libFuzzer target: any byte string given to the .npy reader is parsed or rejected with an IoError.
// Any other exception, a sanitizer report, a crash or a hang is a bug.
#include <cstddef>
#include <cstdint>
#include <span>

#include "ir/error.h"
#include "runtime/io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    // Converting reads every value, so the sanitizers see each access.
    (void)flashjit::io::parse_npy(std::as_bytes(std::span(data, size)), "<fuzz input>").to<double>();
  } catch (const flashjit::IoError&) {
  }
  return 0;
}
