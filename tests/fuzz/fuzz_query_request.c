/*
 * libFuzzer target for vox-query's request decoder (the properties are in
 * fuzz_props.h). Besides "no crash, no out-of-bounds read" (ASan/UBSan):
 * a refusal always says why, and an accepted request keeps its limits.
 */
#include "core/common.h"

#include "fuzz_props.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!vox_fuzz_query_request(data, size))
		abort();
	return 0;
}
