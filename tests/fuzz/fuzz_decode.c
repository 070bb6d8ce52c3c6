/*
 * libFuzzer target for one decoder (VOX_FUZZ_KIND picks the message kind at
 * build time, so each decoder is its own target). Besides "no crash, no
 * out-of-bounds read" (ASan/UBSan), it checks two properties on every
 * input the decoder accepts: the value re-encodes, and the re-encoding
 * decodes to the same value (fuzz_props.h).
 */
#include "core/common.h"

#include "fuzz_props.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!vox_fuzz_event((vox_event_kind)VOX_FUZZ_KIND, data, size))
		abort();
	return 0;
}
