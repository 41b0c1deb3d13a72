// What DiffusionAttention::validate_weights finds when it matches a name -> tensor map (a loaded
// checkpoint) against the layer's parameters.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flashjit {

struct WeightShapeMismatch {
  std::string name;  // the key as it appears in the map
  std::vector<int64_t> expected;
  std::vector<int64_t> actual;
};

struct WeightValidation {
  // Keys (as in the map, prefix included) that load into a parameter.
  std::vector<std::string> matched;
  // Keys under the prefix that name no parameter. Keys outside the prefix belong to other layers
  // and are not listed.
  std::vector<std::string> unmatched;
  // Parameters found under no accepted name, as prefix + diffusers name.
  std::vector<std::string> missing;
  std::vector<WeightShapeMismatch> wrong_shape;
  // Parameters given under both their diffusers and native names, as prefix + diffusers name:
  // which one to load would be a guess.
  std::vector<std::string> ambiguous;

  // True when a strict load would succeed: every parameter found once with its shape, and nothing
  // under the prefix left over.
  bool ok() const {
    return unmatched.empty() && missing.empty() && wrong_shape.empty() && ambiguous.empty();
  }
  // Every problem on one line, for error messages; "ok" when there is none.
  std::string summary() const;
};

}  // namespace flashjit
