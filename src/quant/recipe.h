// Quantization mixes ("Q4_K_M" and friends) and the per-tensor type rules that give each mix its
// meaning. The rules reproduce llama-quantize's choices exactly (ENGINEERING.md §4; oracle:
// ../shared/reference/recipes.json): which tensors are quantized at all, which get more bits
// (output, attn_v, ffn_down in the layers use_more_bits() picks, ...), and the fallbacks for rows
// whose length is not a multiple of a type's block size.
//
// The model's hyper-parameters (head counts, layers, experts) and family switches (Phi-3's fused
// attn_qkv follows the attn_v rules) come from the architecture descriptor
// (formats/model_family.h, read_hparams) for the families it knows; other architectures are
// read through the generic <arch>.* keys as llama-quantize does. Oracle for the families:
// ../shared/arch/recipes.json (experts, fused tensors, tied embeddings).
//
// Explicit user choices come on top: --tensor-type REGEX=TYPE (ECMAScript regex searched in the
// tensor name; the last matching rule wins), --token-embedding-type, --output-tensor-type (for a
// model with tied embeddings it applies to token_embd.weight unless --token-embedding-type is
// given). Unlike llama.cpp these also apply with --pure and to the F16/BF16/F32 mixes, and a
// chosen type whose block does not divide the row length falls back like the mix types do
// (Q2_K/Q3_K/IQ4_XS -> IQ4_NL, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16).
#pragma once

#include <cstdint>
#include <optional>
#include <regex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/types.h"
#include "formats/gguf.h"

namespace qforge {

struct Mix {
  std::string_view name;  // llama-quantize's spelling, e.g. "Q4_K_M"
  uint32_t file_type;     // general.file_type (llama_ftype) written for this mix
  Type base;              // the type most quantized tensors get
};

// The supported mixes, in a stable display order.
std::span<const Mix> all_mixes();
// Case-insensitive lookup; nullptr if unknown.
const Mix* find_mix(std::string_view name);
// As find_mix, with an error that lists the valid names.
Result<const Mix*> mix_for(std::string_view name);
// "Q2_K, Q3_K_S, ..." for messages and --help.
std::string mix_names();

// Types a tensor may be given explicitly (the codec-backed storage types).
bool is_target_type(Type t);
// Case-insensitive type name -> Type, restricted to is_target_type(); the error lists them.
Result<Type> target_type_from_name(std::string_view name);

struct TensorTypeOverride {
  std::string pattern;  // ECMAScript regex, searched in the tensor name
  Type type = Type::F16;
};
// Parses "REGEX=TYPE" (split at the last '='); validates the regex and the type.
Result<TensorTypeOverride> parse_tensor_type_override(std::string_view spec);

struct RecipeOptions {
  bool pure = false;         // every quantized tensor gets the mix's base type
  bool has_imatrix = false;  // a few rules depend on it (IQ4_*, Q4_0/Q5_0 ffn_down)
  std::optional<Type> output_tensor_type;
  std::optional<Type> token_embedding_type;
  std::vector<TensorTypeOverride> tensor_types;
};

// A tensor as the recipe sees it.
struct RecipeTensor {
  std::string name;
  std::vector<uint64_t> dims;  // dims[0] = row length
  Type type = Type::F32;       // current storage type
};

struct TensorChoice {
  bool quantize = false;    // selected for quantization (else copied as is; type = source type)
  Type type = Type::F32;    // the output type
  bool fallback = false;    // a row-length fallback replaced the rule's type
  bool overridden = false;  // an explicit user option decided the type
};

// Whether llama.cpp quantizes a tensor of this name and shape at all: names ending in "weight"
// with at least 2 non-trivial dims, except norms, MoE routers, position/token-type embeddings and
// a few small special tensors.
bool is_quantizable(std::string_view name, std::span<const uint64_t> dims);

// llama.cpp's processing order: tensors outside "blk.N." first, then by layer number, ties by
// name. The layer counters of the rules are counted in this order, and the quantizer writes
// tensors in it (so that files match llama-quantize's byte for byte).
bool llama_tensor_order_less(std::string_view a, std::string_view b);
// Indices of `names` sorted by llama_tensor_order_less (stable).
std::vector<size_t> llama_tensor_order(std::span<const std::string> names);

class Recipe {
 public:
  // Compiles the --tensor-type regexes; error on an invalid one.
  static Result<Recipe> create(const Mix& mix, RecipeOptions opts);
  const Mix& mix() const { return *mix_; }
  const RecipeOptions& options() const { return opts_; }

  // Chooses the type of every tensor. `tensors` must be in llama_tensor_order (the counters of
  // the attn_v / ffn_down rules depend on it); `kvs` supply the architecture, head counts, layer
  // count and expert count. Errors on a model without the hyper-parameters the mix needs.
  Result<std::vector<TensorChoice>> plan(std::span<const RecipeTensor> tensors,
                                         const std::vector<GgufKv>& kvs) const;

 private:
  const Mix* mix_ = nullptr;
  RecipeOptions opts_;
  std::vector<std::regex> regexes_;
};

}  // namespace qforge
