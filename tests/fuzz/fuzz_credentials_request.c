/*
 * libFuzzer target for credentials.*'s request decoder
 * (core/credentials_request.c; the properties are in fuzz_props.h).
 * Besides "no crash, no out-of-bounds read" (ASan/UBSan): a refusal always
 * says why, an accepted request holds only valid names and bounded values.
 */
#include "core/common.h"

#include "fuzz_props.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!vox_fuzz_credentials_request(data, size))
		abort();
	return 0;
}
