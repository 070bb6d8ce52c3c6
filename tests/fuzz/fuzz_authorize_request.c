/*
 * libFuzzer target for billing.authorize's request decoder
 * (core/authorize.c; the properties are in fuzz_props.h). Besides "no
 * crash, no out-of-bounds read" (ASan/UBSan): 413 exactly over 4 KiB, a
 * refusal always says why, an accepted call_id is a canonical UUID.
 */
#include "core/common.h"

#include "fuzz_props.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!vox_fuzz_authorize_request(data, size))
		abort();
	return 0;
}
