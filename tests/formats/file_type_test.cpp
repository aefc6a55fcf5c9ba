// The llama_ftype table (general.file_type): ids and names as llama-quantize writes them.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "formats/file_type.h"

namespace qforge {

TEST(FileType, KnownIdsAndNames) {
  const std::pair<uint32_t, const char*> known[] = {
      {0, "F32"},     {1, "F16"},     {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},
      {8, "Q5_0"},    {9, "Q5_1"},    {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"},
      {13, "Q3_K_L"}, {14, "Q4_K_S"}, {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"},
      {18, "Q6_K"},   {25, "IQ4_NL"}, {30, "IQ4_XS"}, {32, "BF16"},   {37, "TQ2_0"}};
  for (const auto& [id, name] : known) {
    ASSERT_TRUE(file_type_name(id).has_value()) << id;
    EXPECT_EQ(*file_type_name(id), name);
    EXPECT_EQ(file_type_from_name(name), id) << name;
  }
}

TEST(FileType, UnknownAndRemovedIdsAreRejected) {
  for (uint32_t id : {4u, 5u, 6u, 33u, 34u, 35u, 38u, 999u, 1024u})
    EXPECT_FALSE(file_type_name(id).has_value()) << id;
  EXPECT_FALSE(file_type_from_name("Q4_K").has_value());  // a tensor type, not a mix
  EXPECT_FALSE(file_type_from_name("").has_value());
  EXPECT_FALSE(file_type_from_name("Q4_K_MM").has_value());
}

TEST(FileType, LookupIsCaseInsensitiveAndTableIsABijection) {
  EXPECT_EQ(file_type_from_name("q4_k_m"), 15u);
  EXPECT_EQ(file_type_from_name("bf16"), 32u);
  std::set<uint32_t> ids;
  std::set<std::string> names;
  for (const auto& f : all_file_types()) {
    EXPECT_TRUE(ids.insert(f.id).second) << f.id;
    EXPECT_TRUE(names.insert(std::string(f.name)).second) << f.name;
    EXPECT_EQ(file_type_from_name(f.name), f.id);
    EXPECT_EQ(file_type_name(f.id), f.name);
  }
  EXPECT_EQ(ids.size(), 32u);
}

}  // namespace qforge
