// The header dictionary of a .npy file, a Python literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// parsed strictly: exactly the three keys, each once, quoted strings without escapes, True/False,
// and a tuple of non-negative integers. Anything else is an IoError naming the source.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flashjit::io {

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

NpyHeader parse_npy_header(std::string_view text, const std::string& source);
// The dictionary as numpy writes it (without the padding).
std::string format_npy_header(const NpyHeader& header);

}  // namespace flashjit::io
